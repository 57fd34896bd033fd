"""The manager's side of talking to engines: every call goes through the owning agent's queue."""

from __future__ import annotations

import contextlib
from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.conf import settings

from config.celery import ecm_queue, send_task
from engines.models import EngineConn
from linkismanager.exceptions import ManagerError
from linkismanager.models import EngineConnManager

__all__ = ["LOG_TASK", "EngineUnreachableError", "call_engine", "read_log"]

CALL_TASK = "engines.tasks.engine_call"
LOG_TASK = "engines.tasks.read_engine_log"
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
        # The file result backend may already have dropped a result that never came.
        with contextlib.suppress(OSError):
            result.forget()
    if not answer.get("ok"):
        raise EngineUnreachableError(answer.get("error") or f"Engine {engine.instance} did not answer.")
    return answer["answer"]


def read_log(
    ecm: EngineConnManager, log_dir: str, params: dict[str, Any], *, timeout: float | None = None
) -> dict[str, Any]:
    """Ask the ECM's agent for one page of a log under its log root, and wait (bounded) for it.

    Returns the agent's answer: ``{"ok": True, "result": {...}}`` or ``{"ok": False, "kind",
    "error"}`` (see ``engines.tasks.read_engine_log``). An agent that does not answer in time, or
    whose task fails, is an :class:`EngineUnreachableError`.
    """
    wait = timeout or settings.ECM_TASK_TIMEOUT
    result = send_task(LOG_TASK, log_dir, params, queue=ecm_queue(ecm.instance))
    try:
        answer = result.get(timeout=wait, interval=RESULT_POLL_SECONDS, propagate=False)
    except CeleryTimeoutError:
        raise EngineUnreachableError(
            f"ECM {ecm.instance} did not answer within {wait:g} s; it may be down or overloaded, "
            "so the log cannot be read now."
        ) from None
    finally:
        # The file result backend has nothing to forget for a task that never ran.
        with contextlib.suppress(OSError):
            result.forget()
    if not isinstance(answer, dict) or "ok" not in answer:
        raise EngineUnreachableError(f"ECM {ecm.instance} failed to read the log: {answer!r:.200}")
    return answer
