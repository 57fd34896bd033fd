"""``manage.py run_ecm``: the ECM agent of this host."""

from __future__ import annotations

import getpass
import socket
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config.celery import app, ecm_queue
from engines.agent import Agent, run_with
from linkismanager.labels import TENANT, LabelError, validate_label
from linkismanager.resources import LoadInstance, ResourceError, parse_size


class Command(BaseCommand):
    help = "Run the ECM agent of this host: register, heartbeat, and launch and kill engines from its queue."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--instance", help="host:port naming this ECM (default: <hostname>:ECM_PORT).")
        parser.add_argument("--memory", default=str(settings.ECM_DEFAULT_MEMORY), help="Memory capacity, e.g. 100g.")
        parser.add_argument("--cores", type=int, default=settings.ECM_DEFAULT_CORES)
        parser.add_argument("--instances", type=int, default=settings.ECM_DEFAULT_INSTANCES)
        parser.add_argument("--reserve-memory", default=str(settings.ECM_RESERVE_MEMORY))
        parser.add_argument("--reserve-cores", type=int, default=settings.ECM_RESERVE_CORES)
        parser.add_argument("--reserve-instances", type=int, default=settings.ECM_RESERVE_INSTANCES)
        parser.add_argument("--log-root", default=str(settings.ECM_LOG_ROOT))
        parser.add_argument("--tenant", help="Tenant label: only requests of this tenant land here.")
        parser.add_argument("--heartbeat-interval", type=float, default=settings.ECM_HEARTBEAT_INTERVAL)
        parser.add_argument("--kill-grace", type=float, default=settings.ENGINE_KILL_GRACE)
        parser.add_argument("--threads", type=int, default=settings.ECM_WORKER_THREADS)
        parser.add_argument("--loglevel", default="INFO")

    def handle(self, *args: Any, **options: Any) -> None:
        instance = options["instance"] or f"{socket.gethostname()}:{settings.ECM_PORT}"
        if ":" not in instance:
            raise CommandError(f"--instance must be host:port, got {instance!r}")
        try:
            capacity = LoadInstance(
                parse_size(options["memory"], field="--memory"), options["cores"], options["instances"]
            )
            reserve = LoadInstance(
                parse_size(options["reserve_memory"], field="--reserve-memory"),
                options["reserve_cores"],
                options["reserve_instances"],
            )
            labels = {TENANT: validate_label(TENANT, options["tenant"])} if options["tenant"] else {}
        except (ResourceError, LabelError, TypeError) as exc:
            raise CommandError(str(exc)) from None
        agent = Agent(
            instance,
            owner=getpass.getuser(),
            capacity=capacity,
            reserve=reserve,
            log_root=Path(options["log_root"]),
            labels=labels,
            heartbeat_interval=options["heartbeat_interval"],
            kill_grace=options["kill_grace"],
        )
        queue = ecm_queue(instance)
        worker = app.Worker(
            hostname=f"{queue}@{socket.gethostname()}",
            queues=[queue],
            pool="threads",
            concurrency=options["threads"],
            loglevel=options["loglevel"],
            without_gossip=True,
            without_mingle=True,
            without_heartbeat=True,
            # Each engine task is long (a launch waits for the engine); take one at a time per thread.
            prefetch_multiplier=1,
        )
        self.stdout.write(f"ECM agent {instance} consuming {queue}")
        run_with(agent, worker.start)
        if worker.exitcode:
            raise SystemExit(worker.exitcode)
