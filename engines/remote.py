"""The manager's side of talking to engines: every call goes through the owning agent's queue."""

from __future__ import annotations

from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.conf import settings

from config.celery import ecm_queue, send_task
from engines.models import EngineConn
from linkismanager.exceptions import ManagerError

__all__ = ["EngineUnreachableError", "call_engine"]

CALL_TASK = "engines.tasks.engine_call"
# How often the manager polls for an agent's answer (the file result backend is polled).
RESULT_POLL_SECONDS = 0.02


class EngineUnreachableError(ManagerError):
    """The engine's agent or the engine itself did not answer."""


def call_engine(
    engine: EngineConn, method: str, path: str, body: dict | None = None, *, timeout: float | None = None
) -> dict[str, Any]:
    """Ask the engine's agent to make a control-port request and wait (bounded) for the answer."""
    wait = timeout or settings.ECM_TASK_TIMEOUT
    result = send_task(CALL_TASK, engine.pk, method, path, body, wait, queue=ecm_queue(engine.ecm.instance))
    try:
        answer = result.get(timeout=wait + 2, interval=RESULT_POLL_SECONDS, propagate=True)
    except CeleryTimeoutError:
        raise EngineUnreachableError(
            f"ECM {engine.ecm.instance} did not answer within {wait:g} s for engine {engine.instance}."
        ) from None
    finally:
        result.forget()
    if not answer.get("ok"):
        raise EngineUnreachableError(answer.get("error") or f"Engine {engine.instance} did not answer.")
    return answer["answer"]
