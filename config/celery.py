"""The Celery application shared by the web process, the manager worker, beat and ECM agents."""

from __future__ import annotations

import os
import re
import threading

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

__all__ = ["app", "ecm_queue", "enqueue_after_commit", "send_task"]


def ecm_queue(instance: str) -> str:
    """The queue consumed by the agent of the ECM ``instance`` (``host:port``): ``ecm.host_port``.

    Every launch, kill, status call, code run and log read for an engine goes to the queue of the
    agent that owns it, so the task runs on the host where the engine process lives. Queue names
    keep to letters, digits, ``.``, ``_`` and ``-`` (the file-system broker names files after
    them), so the ``:`` of the instance is written ``_``.
    """
    from django.conf import settings

    return settings.CELERY_ECM_QUEUE_PREFIX + re.sub(r"[^A-Za-z0-9._-]", "_", instance)


def enqueue_after_commit(task_name: str, *args: object, queue: str) -> None:
    """Send ``task_name`` to ``queue`` once the current transaction commits.

    Services call this inside their atomic block: if the transaction rolls back, nothing is sent,
    and a worker never picks up a task for a row it cannot see yet. Tasks are sent by name so the
    manager does not import agent-side code.
    """
    from django.db import transaction

    transaction.on_commit(lambda: send_task(task_name, *args, queue=queue))


# Kombu's virtual transports (the file-system broker among them) share channel state that is not
# safe when several threads of one process publish at once; threaded web workers do exactly that.
_publish_lock = threading.Lock()


def send_task(task_name: str, *args: object, queue: str):
    """Send a task by name to ``queue`` now; safe to call from several threads."""
    with _publish_lock:
        return app.send_task(task_name, args=list(args), queue=queue)
