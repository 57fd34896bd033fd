"""Small typed readers for environment variables.

Settings read the environment once, at import, through these helpers. Each one rejects a value it
cannot parse with ``ImproperlyConfigured`` naming the variable, so a typo in a deployment fails at
start-up instead of turning into a silent default.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "env_bool",
    "env_float",
    "env_int",
    "env_json_templates",
    "env_list",
    "env_path",
    "env_secret",
    "env_str",
]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(name: str, default: str) -> str:
    """The variable's text, or ``default`` when unset or blank."""
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    """A boolean written as 1/0, true/false, yes/no or on/off (any case)."""
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    """A whole number, optionally with a lower bound."""
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    """A number of seconds, a factor or any other real number, optionally bounded below."""
    value = _raw(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ImproperlyConfigured(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    """A comma-separated list; blank items are dropped."""
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_path(name: str, default: Path, *, base: Path) -> Path:
    """A filesystem path; a relative one is resolved against ``base``, never the working dir."""
    value = _raw(name)
    path = default if value is None else Path(value).expanduser()
    if not path.is_absolute():
        path = base / path
    return path.resolve()


def env_secret(name: str) -> str | None:
    """A secret given directly or, via ``<NAME>_FILE``, as the path of a file holding it."""
    file_name = _raw(f"{name}_FILE")
    if file_name is not None:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE cannot be read: {exc}") from None
    return _raw(name)


def env_json_templates(name: str) -> dict[str, list[str]]:
    """A JSON object mapping names to non-empty lists of strings (argv templates)."""
    value = _raw(name)
    if value is None:
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a JSON object, got {value!r}") from None
    if not isinstance(parsed, dict) or not all(
        isinstance(key, str)
        and isinstance(argv, list)
        and argv
        and all(isinstance(part, str) and part for part in argv)
        for key, argv in parsed.items()
    ):
        raise ImproperlyConfigured(f"{name} must map each engine type to a non-empty list of strings")
    return parsed
