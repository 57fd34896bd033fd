"""Linkis resources without the database: the LoadInstance triple, sizes, and their JSON forms.

An ECM's capacity, a user's quota and an engine's usage are all LoadInstance resources: memory in
bytes, cores and engine instances. Linkis compares them component by component, and shows them
in three shapes: the API map (with both ``instances`` and its alias ``instance``), the compact
history form (``{"instance": 1, "memory": "2.0 GB", "cpu": 1}``) and the node resource map.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

from linkismanager.exceptions import ManagerError

__all__ = [
    "GB",
    "KB",
    "MAX_COUNT",
    "MAX_MEMORY",
    "MB",
    "PB",
    "TB",
    "LoadInstance",
    "ResourceError",
    "format_size",
    "log_json",
    "parse_size",
    "resource_json",
]

KB = 1024
MB = 1024 * KB
GB = 1024 * MB
TB = 1024 * GB
PB = 1024 * TB

# Linkis keeps memory in a Java long and counts in Java ints; larger values would not round-trip.
MAX_MEMORY = 2**63 - 1
MAX_COUNT = 2**31 - 1

# Binary multiples, as Linkis' byte strings (and Spark's, and the JVM's -Xmx) use them.
_UNITS: Mapping[str, int] = {
    "": 1,
    "b": 1,
    "k": KB,
    "kb": KB,
    "m": MB,
    "mb": MB,
    "g": GB,
    "gb": GB,
    "t": TB,
    "tb": TB,
    "p": PB,
    "pb": PB,
}
# ASCII digits only: Python's \d would also take other scripts' digits.
_SIZE_PATTERN = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)")
_COUNT_PATTERN = re.compile(r"[0-9]+")
_UNIT_NAMES = ", ".join(unit for unit in _UNITS if unit)
# format_size's units, largest first; a unit is used from twice its size, as Linkis does.
_DISPLAY_UNITS = (("TB", TB), ("GB", GB), ("MB", MB), ("KB", KB))


class ResourceError(ManagerError, ValueError):
    """A resource amount the manager refuses; the message names the field and the value given."""

    def __init__(self, message: str, *, field: str | None = None, code: int | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field


def _shown(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _invalid(field: str, value: object, reason: str) -> ResourceError:
    return ResourceError(f"Invalid {field} {_shown(value)}: {reason}", field=field)


def parse_size(value: str | int | float, *, field: str = "size") -> int:
    """A memory size in bytes: ``2147483648``, ``"2g"``, ``"512 MB"``, ``"1.5g"``.

    Units are b, k/kb, m/mb, g/gb, t/tb, p/pb in any case, binary (1k = 1024), with an optional
    space; no unit means bytes. Decimals are allowed with a unit and rounded down to whole bytes;
    a number of bytes must be whole. Negative, empty, non-numeric, NaN and infinite values are
    refused with a :class:`ResourceError` naming ``field`` and the value.
    """
    if isinstance(value, bool):
        raise _invalid(field, value, "expected a number of bytes or a size such as 512m or 2g")
    if isinstance(value, int):
        amount = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise _invalid(field, value, "expected a whole number of bytes")
        amount = int(value)
    elif isinstance(value, str):
        match = _SIZE_PATTERN.fullmatch(value.strip())
        if match is None and _SIZE_PATTERN.fullmatch(value.strip().removeprefix("-").lstrip()):
            raise _invalid(field, value, "a size cannot be negative")
        if match is None:
            raise _invalid(field, value, "expected a number of bytes or a size such as 512m or 2g")
        number, unit = Decimal(match.group(1)), match.group(2).lower()
        if unit not in _UNITS:
            raise _invalid(field, value, f"the unit must be one of {_UNIT_NAMES}")
        if _UNITS[unit] == 1 and number != number.to_integral_value():
            raise _invalid(field, value, "a number of bytes must be whole")
        exact = number * _UNITS[unit]
        # Compare before converting: int() of a number with thousands of digits is refused by Python.
        if exact > MAX_MEMORY:
            raise _invalid(field, value, f"a size cannot exceed {MAX_MEMORY} bytes")
        amount = int(exact)
    else:
        raise _invalid(field, value, "expected a number of bytes or a size such as 512m or 2g")
    if amount < 0:
        raise _invalid(field, value, "a size cannot be negative")
    if amount > MAX_MEMORY:
        raise _invalid(field, value, f"a size cannot exceed {MAX_MEMORY} bytes")
    return amount


def format_size(size: int) -> str:
    """Bytes as Linkis writes them in logs and history rows: ``"2.0 GB"``, ``"512.0 MB"``, ``"100.0 B"``.

    A unit is used from twice its size on (1 GB shows as ``"1024.0 MB"``), with one decimal rounded
    half up, as Linkis does.
    """
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"format_size expects an int of bytes, not {type(size).__name__}")
    for name, unit in _DISPLAY_UNITS:
        if abs(size) >= 2 * unit:
            return f"{(Decimal(size) / unit).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)} {name}"
    return f"{Decimal(size).quantize(Decimal('0.1'))} B"


def _count(obj: Mapping[str, Any], key: str, field: str) -> int:
    given = obj[key]
    value: object = given
    if isinstance(given, float) and math.isfinite(given) and given.is_integer():
        value = int(given)
    elif isinstance(given, str) and _COUNT_PATTERN.fullmatch(given.strip()):
        digits = given.strip().lstrip("0") or "0"
        # Longer digit strings are out of range anyway, and int() refuses thousands of digits.
        value = int(digits) if len(digits) <= len(str(MAX_COUNT)) else MAX_COUNT + 1
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(field, given, "expected a whole number")
    if value < 0:
        raise _invalid(field, given, "cannot be negative")
    if value > MAX_COUNT:
        raise _invalid(field, given, f"cannot exceed {MAX_COUNT}")
    return value


@dataclass(frozen=True)
class LoadInstance:
    """Linkis' LoadInstance resource: memory in bytes, cores and engine instances.

    Arithmetic is component by component and may go below zero (what is left after an
    over-commitment); :meth:`any_negative` and :meth:`clamp_zero` deal with that. Values read from
    clients go through :meth:`from_json`, which refuses negatives.
    """

    ZERO: ClassVar[LoadInstance]

    memory: int
    cores: int
    instances: int

    def __post_init__(self) -> None:
        for name in ("memory", "cores", "instances"):
            value = getattr(self, name)
            # bool is an int, and a float would make the sums inexact: both are programming errors.
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"LoadInstance.{name} must be an int, not {type(value).__name__}")

    def __add__(self, other: object) -> LoadInstance:
        if not isinstance(other, LoadInstance):
            return NotImplemented
        return LoadInstance(self.memory + other.memory, self.cores + other.cores, self.instances + other.instances)

    def __sub__(self, other: object) -> LoadInstance:
        if not isinstance(other, LoadInstance):
            return NotImplemented
        return LoadInstance(self.memory - other.memory, self.cores - other.cores, self.instances - other.instances)

    @classmethod
    def total(cls, resources: Iterable[LoadInstance]) -> LoadInstance:
        """The sum of ``resources`` (ZERO for none)."""
        result = cls.ZERO
        for resource in resources:
            result = result + resource
        return result

    def is_zero(self) -> bool:
        """Whether all three components are zero."""
        return self == LoadInstance.ZERO

    def not_less_than(self, other: LoadInstance) -> bool:
        """Linkis' ``notLess``: every component at least ``other``'s (so it fits when it is a limit)."""
        return self.memory >= other.memory and self.cores >= other.cores and self.instances >= other.instances

    def more_than(self, other: LoadInstance) -> bool:
        """Linkis' ``moreThan``: every component strictly greater than ``other``'s."""
        return self.memory > other.memory and self.cores > other.cores and self.instances > other.instances

    def any_negative(self) -> bool:
        """Whether some component is below zero, i.e. a subtraction took more than there was."""
        return self.memory < 0 or self.cores < 0 or self.instances < 0

    def clamp_zero(self) -> LoadInstance:
        """The same with negative components raised to zero, for display of what is left."""
        return LoadInstance(max(self.memory, 0), max(self.cores, 0), max(self.instances, 0))

    def describe(self) -> str:
        """A short human text for messages: ``"2.0 GB memory, 1 core, 2 instances"``."""
        cores = "core" if self.cores == 1 else "cores"
        instances = "instance" if self.instances == 1 else "instances"
        return f"{format_size(self.memory)} memory, {self.cores} {cores}, {self.instances} {instances}"

    def to_json(self) -> dict[str, int]:
        """The API map. ``instance`` repeats ``instances`` because Linkis serialises both and the
        console reads ``instance``."""
        return {"memory": self.memory, "cores": self.cores, "instances": self.instances, "instance": self.instances}

    @classmethod
    def from_json(cls, obj: object, *, field: str = "resource") -> LoadInstance:
        """A LoadInstance from a client's map, refusing anything that is not a plain amount.

        ``memory`` takes bytes or a size string (see :func:`parse_size`); ``cores`` and ``instances``
        (or its alias ``instance``) take whole numbers or strings of digits. Negatives, booleans,
        missing fields and disagreeing ``instances``/``instance`` are refused with a
        :class:`ResourceError` naming the field, prefixed by ``field``.
        """
        if not isinstance(obj, Mapping):
            raise ResourceError(
                f"{field} must be an object with memory, cores and instances, not {_shown(obj)}", field=field
            )
        for key in ("memory", "cores"):
            if key not in obj:
                raise ResourceError(f"{field}.{key} is required", field=f"{field}.{key}")
        memory = parse_size(obj["memory"], field=f"{field}.memory")
        cores = _count(obj, "cores", f"{field}.cores")
        given = [key for key in ("instances", "instance") if key in obj]
        if not given:
            raise ResourceError(f"{field}.instances is required", field=f"{field}.instances")
        counts = {key: _count(obj, key, f"{field}.{key}") for key in given}
        if len(set(counts.values())) > 1:
            raise ResourceError(
                f"{field}.instances ({counts['instances']}) and {field}.instance ({counts['instance']}) disagree",
                field=f"{field}.instances",
            )
        return cls(memory, cores, counts[given[0]])


LoadInstance.ZERO = LoadInstance(0, 0, 0)


def log_json(resource: LoadInstance) -> dict[str, Any]:
    """Linkis' compact form in the engine history: ``{"instance": 1, "memory": "2.0 GB", "cpu": 1}``."""
    return {"instance": resource.instances, "memory": format_size(resource.memory), "cpu": resource.cores}


def resource_json(
    # Named after Linkis' maxResource and minResource; the builtins are not needed here.
    max: LoadInstance,
    min: LoadInstance,
    used: LoadInstance,
    locked: LoadInstance,
    left: LoadInstance | None = None,
) -> dict[str, Any]:
    """A node resource map as the API shows it, of type ``LoadInstance``.

    ``leftResource`` defaults to max − used − locked: locked resources are promised to starting
    engines, so they are not left. It may be negative when a capacity was lowered below what is
    already held, which is the truth the console should see.
    """
    if left is None:
        left = max - used - locked
    return {
        "resourceType": "LoadInstance",
        "maxResource": max.to_json(),
        "minResource": min.to_json(),
        "usedResource": used.to_json(),
        "lockedResource": locked.to_json(),
        "leftResource": left.to_json(),
        "expectedResource": None,
    }
