"""The Celery application shared by the web process, the manager worker, beat and ECM agents."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

__all__ = ["app", "ecm_queue"]


def ecm_queue(instance: str) -> str:
    """The queue consumed by the agent of the ECM ``instance`` (``host:port``).

    Every launch, kill, status call, code run and log read for an engine goes to the queue of the
    agent that owns it, so the task runs on the host where the engine process lives.
    """
    from django.conf import settings

    return f"{settings.CELERY_ECM_QUEUE_PREFIX}{instance}"
