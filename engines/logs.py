"""Reading engine log files, as Linkis' engine-log operator pages them. Pure: no Django, no database.

The manager validates a request with :class:`LogQuery` before sending it; the ECM agent validates
it again and reads the file under its own log root. Whatever the request says, a read stays inside
that root: the folder is relative, has no ``..`` part, and is opened one component at a time with
``O_NOFOLLOW``, so a symbolic link anywhere below the root (to another user's log, to ``/etc``) is
refused rather than followed, and a link swapped in between the check and the read cannot win.

A page is counted in lines of the file: ``fromLine`` (1-based) says where to start, ``pageSize``
how many lines to return, and the answer's ``endLine`` is the last line scanned, so the next page
starts at ``endLine + 1``. With ``enableTail`` lines are counted from the end of the file and the
page comes back in file order. ``onlyKeywords`` / ``ignoreKeywords`` filter whole records: a line
that starts with a timestamp opens a record, and the lines after it (a traceback) share its fate.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "LOG_TYPES",
    "MAX_LINES",
    "LogError",
    "LogMissingError",
    "LogParamError",
    "LogQuery",
    "LogRefusedError",
    "log_path",
    "open_log",
    "read_log",
]

# The file names an engine's log folder may hold (Linkis' logType values).
LOG_TYPES = ("stdout", "stderr", "gc", "udfLog", "yarnApp")
DEFAULT_PAGE_SIZE = 100
# Linkis' linkis.engineconn.log.fetch.lines.max: the most lines one read returns.
MAX_LINES = 5000
# One answer travels through the broker: a longer line is cut, and a page stops early (its endLine
# says where to continue) rather than grow past this.
MAX_LINE_BYTES = 64 * 1024
MAX_PAGE_BYTES = 4 * 1024 * 1024
LINE_TRUNCATED = " …[line truncated]"
# Keep this many continuation lines waiting for their record's first line when reading backwards;
# beyond it they are judged one by one, so a record without a timestamp cannot exhaust memory.
MAX_PENDING_LINES = 10_000

_BLOCK = 64 * 1024
# A log record starts with a date and time, optionally bracketed: "2024-05-01 12:00:00.123 INFO ...".
_RECORD_START = re.compile(r"^\s*\[?\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}")


class LogError(Exception):
    """A log read that cannot be done; the message says why, naming the field or the file."""


class LogParamError(LogError, ValueError):
    """A request parameter is missing or malformed."""


class LogRefusedError(LogError):
    """The path leaves the log root, goes through a symbolic link, or is not a regular file."""


class LogMissingError(LogError):
    """The log file does not exist (the engine never wrote it, or it was cleaned up)."""


def _int(params: Mapping[str, Any], name: str, default: int, *, minimum: int, maximum: int) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,12}", value.strip()):
        value = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise LogParamError(f"parameters.{name} must be a whole number, got {value!r:.60}.")
    if not minimum <= value <= maximum:
        raise LogParamError(f"parameters.{name} must be between {minimum} and {maximum}, got {value}.")
    return value


def _bool(params: Mapping[str, Any], name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise LogParamError(f"parameters.{name} must be true or false, got {value!r:.60}.")


def _keywords(params: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = params.get(name)
    if value is None:
        return ()
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        items = value
    elif isinstance(value, str):
        items = value.split(",")
    else:
        raise LogParamError(f"parameters.{name} must be a comma-separated string, got {type(value).__name__}.")
    return tuple(item.strip() for item in items if item.strip())


@dataclass(frozen=True)
class LogQuery:
    """One read of one engine log file, validated."""

    log_type: str
    from_line: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    enable_tail: bool = False
    last_rows: int = 0
    only_keywords: tuple[str, ...] = ()
    ignore_keywords: tuple[str, ...] = ()

    @classmethod
    def from_params(cls, params: object, *, default_tail: bool = False) -> LogQuery:
        """The query in Linkis' ``parameters`` map; a :class:`LogParamError` names a bad field.

        ``fromLine`` 0 (what the console sends for the first page) means 1.
        """
        if not isinstance(params, Mapping):
            raise LogParamError("parameters must be a JSON object.")
        log_type = params.get("logType")
        if log_type is None or log_type == "":
            raise LogParamError(f"parameters.logType is required: one of {', '.join(LOG_TYPES)}.")
        if log_type not in LOG_TYPES:
            raise LogParamError(f"parameters.logType must be one of {', '.join(LOG_TYPES)}, got {log_type!r:.60}.")
        return cls(
            log_type=log_type,
            from_line=max(_int(params, "fromLine", 1, minimum=0, maximum=2**31 - 1), 1),
            page_size=_int(params, "pageSize", DEFAULT_PAGE_SIZE, minimum=1, maximum=MAX_LINES),
            enable_tail=_bool(params, "enableTail", default_tail),
            last_rows=_int(params, "lastRows", 0, minimum=0, maximum=MAX_LINES),
            only_keywords=_keywords(params, "onlyKeywords"),
            ignore_keywords=_keywords(params, "ignoreKeywords"),
        )

    def to_params(self) -> dict[str, Any]:
        """The query as Linkis parameters again, to send to the agent."""
        data = asdict(self)
        return {
            "logType": data["log_type"],
            "fromLine": data["from_line"],
            "pageSize": data["page_size"],
            "enableTail": data["enable_tail"],
            "lastRows": data["last_rows"],
            "onlyKeywords": ",".join(self.only_keywords),
            "ignoreKeywords": ",".join(self.ignore_keywords),
        }

    @property
    def filtered(self) -> bool:
        return bool(self.only_keywords or self.ignore_keywords)

    def keeps(self, line: str) -> bool:
        """Whether a record whose first line is ``line`` passes the keyword filters."""
        if self.only_keywords and not any(word in line for word in self.only_keywords):
            return False
        return not (self.ignore_keywords and any(word in line for word in self.ignore_keywords))


# --- Paths ----------------------------------------------------------------------------------------


def _folder_parts(log_dir: str) -> list[str]:
    """The components of a log folder relative to the root; absolute paths and ``..`` are refused."""
    if not isinstance(log_dir, str) or not log_dir.strip("/ "):
        raise LogRefusedError("The log folder is empty.")
    if "\x00" in log_dir or "\\" in log_dir:
        raise LogRefusedError(f"The log folder {log_dir!r:.120} is not a plain relative path.")
    path = PurePosixPath(log_dir)
    if path.is_absolute():
        raise LogRefusedError(f"The log folder {log_dir!r:.120} must be relative to the ECM's log root.")
    parts = [part for part in path.parts if part not in ("", ".")]
    if ".." in parts:
        raise LogRefusedError(f"The log folder {log_dir!r:.120} leaves the ECM's log root.")
    return parts


def log_path(log_root: Path, log_dir: str, log_type: str) -> Path:
    """Where the log file is: ``<log root>/<log_dir>/<log_type>``, checked to stay under the root."""
    if log_type not in LOG_TYPES:
        raise LogRefusedError(f"Unknown log type {log_type!r:.60}; expected one of {', '.join(LOG_TYPES)}.")
    root = log_root.resolve()
    path = root.joinpath(*_folder_parts(log_dir), log_type)
    # A link that leads out of the root is named as such; open_log refuses any other link too.
    if not path.resolve().is_relative_to(root):
        raise LogRefusedError(f"The log file {path} leads outside the ECM's log root.")
    return path


def open_log(log_root: Path, log_dir: str, log_type: str) -> tuple[Path, BinaryIO]:
    """Open the log file for reading, refusing symbolic links anywhere below the root.

    Each folder is opened relative to the previous one with ``O_NOFOLLOW``, so what is checked is
    what is read. The file must be a regular file (a FIFO or a device would hang or never end).
    """
    path = log_path(log_root, log_dir, log_type)
    root = log_root.resolve()
    relative = path.relative_to(root).parts
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(root, flags | os.O_DIRECTORY)
    try:
        for index, part in enumerate(relative):
            last = index == len(relative) - 1
            try:
                next_fd = os.open(part, flags | (os.O_NONBLOCK if last else os.O_DIRECTORY), dir_fd=fd)
            except OSError as exc:
                shown = root.joinpath(*relative[: index + 1])
                if exc.errno in (errno.ELOOP, errno.EMLINK) or (exc.errno == errno.ENOTDIR and os.path.islink(shown)):
                    raise LogRefusedError(f"{shown} is a symbolic link; logs are read only from real files.") from None
                if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                    raise LogMissingError(f"The log file {path} does not exist.") from None
                raise LogError(f"The log file {path} cannot be opened: {exc.strerror}.") from None
            os.close(fd)
            fd = next_fd
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise LogRefusedError(f"{path} is not a regular file.")
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    return path, handle


# --- Lines ----------------------------------------------------------------------------------------


def _decode(raw: bytes, truncated: bool) -> str:
    text = raw.decode("utf-8", "replace").rstrip("\r")
    return text + LINE_TRUNCATED if truncated else text


def _keep_start(data: bytes, cut: bool) -> tuple[bytes, bool]:
    if len(data) > MAX_LINE_BYTES:
        return data[:MAX_LINE_BYTES], True
    return data, cut


def _forward_lines(handle: BinaryIO) -> Iterator[str]:
    """The file's lines from the start, each cut at MAX_LINE_BYTES (its start kept)."""
    while raw := handle.readline(MAX_LINE_BYTES):
        if raw.endswith(b"\n"):
            yield _decode(raw[:-1], False)
            continue
        # Either the last line (no newline) or a line longer than the limit: skip the rest of it.
        skipped = False
        while (rest := handle.readline(MAX_LINE_BYTES)) and rest != b"\n":
            skipped = True
            if rest.endswith(b"\n"):
                break
        yield _decode(raw, skipped)


def _backward_lines(handle: BinaryIO) -> Iterator[str]:
    """The file's lines from the end, each cut at MAX_LINE_BYTES (its start kept)."""
    position = handle.seek(0, os.SEEK_END)
    tail, cut = b"", False  # the end of the line being assembled, whose start is further back
    last_line = True
    while position > 0:
        size = min(_BLOCK, position)
        position -= size
        handle.seek(position)
        block = handle.read(size)
        pieces = block.split(b"\n")
        if len(pieces) == 1:
            # Read backwards, the start of the line comes last: keep the earliest bytes read so far.
            tail, cut = _keep_start(block + tail, cut)
            continue
        complete = [(pieces[-1] + tail, cut)] + [(piece, False) for piece in reversed(pieces[1:-1])]
        for raw, was_cut in complete:
            if last_line:
                last_line = False
                if raw == b"":  # the file ends with a newline
                    continue
            yield _decode(raw[:MAX_LINE_BYTES], was_cut or len(raw) > MAX_LINE_BYTES)
        tail, cut = _keep_start(pieces[0], False)
    if not (last_line and tail == b""):
        yield _decode(tail, cut)


# --- Pages ----------------------------------------------------------------------------------------


class _Page:
    """The lines of one answer, and the last line consumed (returned, filtered out or skipped)."""

    def __init__(self, limit: int) -> None:
        self.lines: list[str] = []
        self.limit = limit
        self.size = 0
        self.end_line = 0

    @property
    def full(self) -> bool:
        return len(self.lines) >= self.limit

    def add(self, line: str, number: int) -> bool:
        """Take one line; False when it does not fit (the page is full or would grow too big)."""
        if self.full or (self.lines and self.size + len(line) > MAX_PAGE_BYTES):
            return False
        self.lines.append(line)
        self.size += len(line) + 1
        self.end_line = number
        return True

    def consume(self, number: int) -> None:
        """A line scanned but not returned."""
        self.end_line = number


def _read_forward(handle: BinaryIO, query: LogQuery) -> tuple[list[str], int]:
    page = _Page(query.page_size)
    record_kept: bool | None = None
    for number, line in enumerate(_forward_lines(handle), 1):
        keep = True
        if query.filtered:
            # Continuation lines share the fate of their record, also across fromLine.
            if _RECORD_START.match(line):
                record_kept = query.keeps(line)
            keep = record_kept if record_kept is not None else query.keeps(line)
        if number < query.from_line or not keep:
            page.consume(number)
            continue
        if not page.add(line, number) or page.full:
            break
    return page.lines, page.end_line


def _read_backward(handle: BinaryIO, query: LogQuery, from_line: int, limit: int) -> tuple[list[str], int]:
    """Lines counted from the end, returned in file order; ``endLine`` counts from the end too."""
    page = _Page(limit)
    pending: deque[tuple[int, str]] = deque()  # latest first: continuation lines awaiting their record's start

    def flush(keep_all: bool | None) -> bool:
        """Judge the pending lines; False once the page is full."""
        while pending:
            number, line = pending[0]
            if keep_all if keep_all is not None else query.keeps(line):
                if not page.add(line, number):
                    return False
            else:
                page.consume(number)
            pending.popleft()
        return not page.full

    for number, line in enumerate(_backward_lines(handle), 1):
        if number < from_line:
            page.consume(number)
            continue
        if not query.filtered:
            if not page.add(line, number) or page.full:
                break
            continue
        pending.append((number, line))
        if _RECORD_START.match(line):
            if not flush(query.keeps(line)):
                break
        elif len(pending) > MAX_PENDING_LINES and not flush(None):
            break
    else:
        flush(None)  # lines before the file's first record: judged one by one
    page.lines.reverse()
    return page.lines, page.end_line


def read_log(log_root: Path, log_dir: str, query: LogQuery) -> dict[str, Any]:
    """Read one page of an engine log: Linkis' ``{logPath, logs, endLine, rows}``.

    With ``lastRows`` it is the last that many lines (``tail -n``), in file order.
    """
    path, handle = open_log(log_root, log_dir, query.log_type)
    with handle:
        if query.last_rows > 0:
            lines, end_line = _read_backward(handle, LogQuery(query.log_type), 1, query.last_rows)
        elif query.enable_tail:
            lines, end_line = _read_backward(handle, query, query.from_line, query.page_size)
        else:
            lines, end_line = _read_forward(handle, query)
    return {"logPath": str(path), "logs": lines, "endLine": end_line, "rows": len(lines)}
