"""Reading Linkis request bodies: the shared fields, with Linkis' error texts.

Linkis handlers pull fields out of a raw JSON tree by name; these helpers do the same, but a
missing or mistyped field is a clean envelope naming it rather than a crash.
"""

from __future__ import annotations

from typing import Any

from linkismanager.linkis.exceptions import LinkisAPIError

__all__ = ["body_object", "optional_text", "require_instance", "require_text"]

INSTANCE_CODE = 21001


def body_object(data: Any, *, what: str = "request body") -> dict[str, Any]:
    """The body as a JSON object, or a clean error."""
    if not isinstance(data, dict):
        raise LinkisAPIError(f"The {what} must be a JSON object.")
    return data


def require_text(data: dict[str, Any], name: str, *, code: int | None = None, message: str | None = None) -> str:
    """A required, non-blank string field."""
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise LinkisAPIError(message or f"{name} cannot be null(请求参数{name}不能为空)", code=code)
    if not isinstance(value, str):
        raise LinkisAPIError(f"{name} must be a string, got {type(value).__name__}.")
    return value.strip()


def optional_text(data: dict[str, Any], name: str) -> str | None:
    """An optional string field; blank counts as absent."""
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise LinkisAPIError(f"{name} must be a string, got {type(value).__name__}.")
    return value.strip() or None


def require_instance(data: dict[str, Any]) -> tuple[str, str]:
    """Linkis' common pair: ``applicationName`` and ``instance`` (``host:port``), both required.

    ``applicationName`` is accepted in any spelling clients send; look-ups use ``instance``.
    """
    application = require_text(data, "applicationName", code=INSTANCE_CODE)
    instance = require_text(data, "instance", code=INSTANCE_CODE)
    if len(instance) > 128:
        raise LinkisAPIError("instance is too long (at most 128 characters).")
    return application, instance
