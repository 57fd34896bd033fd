"""Create the demo users of the embedded mode and, on request, demo registry rows (idempotent)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from config.env import env_str
from engines.models import EngineHistory
from linkismanager.choices import NodeStatus
from linkismanager.dbtime import db_now
from linkismanager.resources import LoadInstance, log_json
from linkismanager.services import register_ecm

DEMO_USERS = [
    # (name, Django superuser): hadoop is the default Linkis admin.
    ("hadoop", True),
    ("alice", False),
    ("bob", False),
]

DEMO_ECM = "demo-host:9102"
# Fixed ticket ids, so a second run finds the rows of the first instead of adding more.
_DEMO_NAMESPACE = uuid.UUID("6f1c2d9e-5b7a-4c3e-9a8d-2e4f6a1b3c5d")
DEMO_HISTORY = [
    # (user, creator, engine type, version, engine port, final status)
    ("alice", "IDE", "python", "python3", 40001, NodeStatus.SUCCESS),
    ("bob", "IDE", "shell", "1", 40002, NodeStatus.FAILED),
]


class Command(BaseCommand):
    help = (
        "Create the demo users hadoop (admin), alice and bob with the DEMO_PASSWORD password; with "
        f"--with-data also the demo ECM {DEMO_ECM} and a few ended engines' history records."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--with-data",
            action="store_true",
            help=f"Also register the demo ECM {DEMO_ECM} and add history records of ended engines.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self._users()
        if options["with_data"]:
            self._registry()

    def _users(self) -> None:
        password = env_str("DEMO_PASSWORD", settings.DEMO_PASSWORD_DEFAULT)
        user_model = get_user_model()
        for name, is_admin in DEMO_USERS:
            user, created = user_model.objects.get_or_create(username=name)
            user.is_staff = is_admin
            user.is_superuser = is_admin
            if created or not user.has_usable_password():
                user.set_password(password)
            user.save()
            self.stdout.write(f"{'created' if created else 'kept'} user {name}{' (admin)' if is_admin else ''}")

    def _registry(self) -> None:
        # Registration is an upsert keyed on the instance: a second run refreshes the same row and
        # keeps what staff set on it (description, labels, health pin). Its labels are the ones
        # every ECM gets (serverAlias, emInstance) and no tenant, so it takes any user's engines.
        ecm = register_ecm(
            DEMO_ECM,
            owner="hadoop",
            capacity=LoadInstance(
                settings.ECM_DEFAULT_MEMORY, settings.ECM_DEFAULT_CORES, settings.ECM_DEFAULT_INSTANCES
            ),
            reserve=LoadInstance(
                settings.ECM_RESERVE_MEMORY, settings.ECM_RESERVE_CORES, settings.ECM_RESERVE_INSTANCES
            ),
        )
        self.stdout.write(f"registered ECM {ecm.instance} (no agent runs behind it)")
        now = db_now()
        with transaction.atomic():
            for user, creator, engine_type, version, port, status in DEMO_HISTORY:
                ticket_id = uuid.uuid5(_DEMO_NAMESPACE, f"{user}-{creator},{engine_type}-{version}")
                resource = log_json(LoadInstance(settings.ENGINE_DEFAULT_MEMORY, settings.ENGINE_DEFAULT_CORES, 1))
                started = now - timedelta(hours=2)
                _, created = EngineHistory.objects.get_or_create(
                    ticket_id=ticket_id,
                    defaults={
                        "label_value": f"{user}-{creator},{engine_type}-{version}",
                        "create_user": user,
                        "engine_type": engine_type,
                        "service_instance": f"{DEMO_ECM.split(':')[0]}:{port}",
                        "ecm_instance": DEMO_ECM,
                        "status": status,
                        "log_dir_suffix": f"{user}/{started:%Y%m%d}/{engine_type}/{ticket_id}/logs",
                        "request_resource": resource,
                        "request_times": 1,
                        "used_resource": resource,
                        "used_times": 1,
                        "used_time": started,
                        "released_resource": resource,
                        "release_times": 1,
                        "release_time": started + timedelta(hours=1),
                    },
                )
                self.stdout.write(
                    f"{'created' if created else 'kept'} history of {user}'s ended {engine_type} engine {ticket_id}"
                )
