"""Tasks that run on an ECM agent, consumed from its queue ``ecm.<instance>``.

They take ids, re-check state on entry, and call the agent. The manager sends them by name
(``engines.services`` and ``engines.remote``), never importing the agent.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.utils.log import get_task_logger

from engines.agent import AgentError, current_agent
from engines.logs import LogError, LogMissingError, LogParamError, LogRefusedError
from engines.models import EngineConn
from linkismanager.logcontext import ticket_context

logger = get_task_logger(__name__)

__all__ = ["engine_call", "kill_engine", "launch_engine", "read_engine_log"]


def _ticket(engine_id: int) -> str:
    """The engine's ticket id, for the log lines of its task."""
    ticket = EngineConn.objects.filter(pk=engine_id).values_list("ticket_id", flat=True).first()
    return str(ticket) if ticket else "-"


@shared_task(name="engines.tasks.launch_engine", ignore_result=True)
def launch_engine(engine_id: int) -> None:
    """Start the engine's process; failures are recorded on the engine."""
    with ticket_context(_ticket(engine_id)):
        try:
            result = current_agent().launch(engine_id)
        except AgentError as exc:
            logger.warning("Launch of engine %s refused: %s", engine_id, exc)
            return
        logger.info("Launch of engine %s: %s", engine_id, result)


@shared_task(name="engines.tasks.kill_engine", ignore_result=True)
def kill_engine(engine_id: int) -> None:
    """Stop the engine's process and record its end."""
    with ticket_context(_ticket(engine_id)):
        try:
            result = current_agent().kill(engine_id)
        except AgentError as exc:
            logger.warning("Kill of engine %s refused: %s", engine_id, exc)
            return
        logger.info("Kill of engine %s: %s", engine_id, result)


@shared_task(name="engines.tasks.engine_call")
def engine_call(
    engine_id: int, method: str, path: str, body: dict | None = None, timeout: float | None = None
) -> dict[str, Any]:
    """A request to the engine's control port (status, code, lock), answered to the manager."""
    with ticket_context(_ticket(engine_id)):
        try:
            return {"ok": True, "answer": current_agent().call(engine_id, method, path, body, timeout)}
        except AgentError as exc:
            return {"ok": False, "error": str(exc)}


_LOG_ERROR_KINDS = {LogMissingError: "missing", LogRefusedError: "refused", LogParamError: "invalid"}


@shared_task(name="engines.tasks.read_engine_log")
def read_engine_log(log_dir: str, params: dict[str, Any]) -> dict[str, Any]:
    """One page of an engine log (``openEngineLog``), read under this agent's log root.

    Answers ``{"ok": True, "result": {logPath, logs, endLine, rows}}`` or ``{"ok": False, "kind",
    "error"}``, where kind is missing (no such file), refused (the path leaves the root, is a link or
    not a file) or invalid (a bad parameter).
    """
    try:
        return {"ok": True, "result": current_agent().read_log(log_dir, params)}
    except LogError as exc:
        kind = next((name for cls, name in _LOG_ERROR_KINDS.items() if isinstance(exc, cls)), "failed")
        if kind == "refused":
            logger.warning("Log read refused: %s", exc)
        return {"ok": False, "kind": kind, "error": str(exc)}
    except (AgentError, OSError) as exc:
        return {"ok": False, "kind": "failed", "error": str(exc)}
