"""What every benchmark shares: a throw-away environment, timing statistics, the machine's
description, and the results (a table on stdout, JSON in the results folder).

Nothing here imports Django at module level: ``Environment`` sets ``DATA_DIR`` (and, on
PostgreSQL, a scratch database) before the settings are read.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS_DIR = BASE_DIR / "bench" / "results"
SIZES = ("tiny", "small", "large")
API = "/api/rest_j/v1/linkisManager"
GIB = 1024**3

__all__ = [
    "API",
    "BASE_DIR",
    "GIB",
    "SIZES",
    "Environment",
    "Figure",
    "QueryLog",
    "Results",
    "admin_client",
    "api_get",
    "api_post",
    "machine",
    "parse_args",
    "render_table",
    "stats",
    "time_ratio",
    "timed",
]


def parse_args(name: str, description: str) -> argparse.Namespace:
    """The command line every benchmark takes: the size and the results folder."""
    parser = argparse.ArgumentParser(prog=f"python -m bench.{name}", description=description)
    parser.add_argument("--size", choices=SIZES, default=os.environ.get("SIZE") or "small")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(os.environ.get("BENCH_RESULTS_DIR") or RESULTS_DIR),
        help="folder for <name>.json (default: bench/results)",
    )
    return parser.parse_args()


# --- The environment ----------------------------------------------------------------------------


def _scratch_postgres(url: str) -> tuple[str, Callable[[], None]]:
    """A new, empty database on the server of ``url``; the URL to it and how to drop it."""
    import dj_database_url
    import psycopg

    config = dj_database_url.parse(url)
    name = f"linkis_bench_{uuid.uuid4().hex[:12]}"
    connect = {
        "host": config["HOST"] or None,
        "port": config["PORT"] or None,
        "user": config["USER"] or None,
        "password": config["PASSWORD"] or None,
        "dbname": config["NAME"] or "postgres",
        "autocommit": True,
    }
    with psycopg.connect(**connect) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, query = url.partition("?")
    scratch = base.rsplit("/", 1)[0] + "/" + name + (f"?{query}" if query else "")

    def drop() -> None:
        with psycopg.connect(**connect) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return scratch, drop


class Environment:
    """A throw-away data folder (SQLite database, file broker, engine logs) and, when
    ``DATABASE_URL`` names a PostgreSQL server, a scratch database on it; migrated, and removed
    afterwards. Django is set up inside; enter it before importing anything of the project."""

    def __init__(self, name: str, **settings_env: str) -> None:
        self.name = name
        self.settings_env = settings_env
        self.data_dir: Path | None = None
        self._drop: Callable[[], None] | None = None

    def __enter__(self) -> Environment:
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"linkis-bench-{self.name}-"))
        os.environ["DATA_DIR"] = str(self.data_dir)
        os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
        # The in-process test client calls itself "testserver".
        os.environ["ALLOWED_HOSTS"] = "testserver,localhost,127.0.0.1"
        os.environ.setdefault("LOG_LEVEL", "WARNING")
        # Another run's broker must not be shared: the file broker lives in the data folder.
        if not os.environ.get("CELERY_BROKER_URL", "").startswith("redis"):
            os.environ.pop("CELERY_BROKER_URL", None)
            os.environ.pop("CELERY_RESULT_BACKEND", None)
        os.environ.update(self.settings_env)
        url = os.environ.get("DATABASE_URL", "")
        if url.startswith(("postgres://", "postgresql://")):
            os.environ["DATABASE_URL"], self._drop = _scratch_postgres(url)
        else:
            os.environ.pop("DATABASE_URL", None)  # the data folder's SQLite file
        if str(BASE_DIR) not in sys.path:
            sys.path.insert(0, str(BASE_DIR))

        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0, interactive=False)
        return self

    def __exit__(self, *exc_info: object) -> None:
        from django.db import connections

        connections.close_all()
        try:
            if self._drop is not None:
                self._drop()
        finally:
            if self.data_dir is not None:
                shutil.rmtree(self.data_dir, ignore_errors=True)


def admin_client():
    """A test client logged in as a Django superuser (the admin the list endpoints require)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    user, created = get_user_model().objects.get_or_create(
        username="benchadmin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def _data(path: str, response: Any) -> dict[str, Any]:
    payload = response.json()
    if response.status_code != 200 or payload.get("status") != 0:
        raise RuntimeError(f"{path} answered HTTP {response.status_code}: {json.dumps(payload)[:500]}")
    return payload["data"]


def api_post(client: Any, path: str, body: Any) -> dict[str, Any]:
    """POST JSON to a Linkis endpoint; the envelope's data, or an error naming the answer."""
    return _data(path, client.post(f"{API}/{path}", data=json.dumps(body), content_type="application/json"))


def api_get(client: Any, path: str) -> dict[str, Any]:
    """GET a Linkis endpoint; the envelope's data, or an error naming the answer."""
    return _data(path, client.get(f"{API}/{path}"))


# --- Queries ------------------------------------------------------------------------------------


class QueryLog:
    """The SQL statements run on the default connection inside ``with QueryLog() as log:`` (no
    limit on how many, unlike Django's debug log), with their parameters."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Any]] = []

    def _record(self, execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.statements.append((sql, params))
        return execute(sql, params, many, context)

    def __enter__(self) -> QueryLog:
        from django.db import connection

        self._wrapper = connection.execute_wrapper(self._record)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._wrapper.__exit__(*exc_info)

    def __len__(self) -> int:
        return len(self.statements)


# --- Timing -------------------------------------------------------------------------------------


@contextmanager
def timed(samples: list[float]):
    """Append the block's wall time, in seconds, to ``samples``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        samples.append(time.perf_counter() - started)


def _nearest_rank(ordered: list[float], fraction: float) -> float:
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def stats(seconds: Iterable[float]) -> dict[str, float]:
    """Median, 95th percentile (nearest rank), min and max of durations, in milliseconds."""
    ordered = sorted(value * 1000 for value in seconds)
    if not ordered:
        raise ValueError("no samples")
    return {
        "n": len(ordered),
        "median_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(_nearest_rank(ordered, 0.95), 3),
        "min_ms": round(ordered[0], 3),
        "max_ms": round(ordered[-1], 3),
    }


# --- The machine --------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What the figures were measured on; call after Django is set up (for the database)."""
    import django
    import psutil
    from django.db import connection

    if connection.vendor == "sqlite":
        import sqlite3

        database = f"SQLite {sqlite3.sqlite_version}"
    elif connection.vendor == "postgresql":
        connection.ensure_connection()
        version = connection.pg_version
        database = f"PostgreSQL {version // 10000}.{version % 10000}"
    else:
        database = connection.vendor
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / GIB, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "database": database,
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
    }


# --- Results ------------------------------------------------------------------------------------


@dataclass
class Figure:
    """One measured figure beside its limit. ``ratio`` is always ours ÷ the limit in time (for a
    rate: the limit's rate ÷ ours), so 1.0 is the limit and higher is slower."""

    name: str
    ours: dict[str, Any]
    limit: dict[str, Any] | None = None
    limit_what: str = ""
    ratio: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ours": self.ours,
            "limit": self.limit,
            "limit_what": self.limit_what,
            "ratio": None if self.ratio is None else round(self.ratio, 2),
            "notes": self.notes,
        }


def time_ratio(ours: dict[str, float], limit: dict[str, float], key: str = "median_ms") -> float:
    return ours[key] / limit[key] if limit[key] > 0 else float("inf")


def _shown(values: dict[str, Any] | None) -> str:
    if not values:
        return "-"
    if "per_second" in values:
        return f"{values['per_second']:,.0f}/s"
    if "median_ms" in values:
        return f"{values['median_ms']:,.1f} / {values['p95_ms']:,.1f} ms"
    if "ms" in values:
        return f"{values['ms']:,.1f} ms"
    return json.dumps(values)


def _notes(notes: dict[str, Any]) -> str:
    """Scalars and small maps; lists (query plans …) stay in the JSON."""
    return ", ".join(f"{key}={value}" for key, value in notes.items() if not isinstance(value, list))


def render_table(name: str, size: str, figures: list[dict[str, Any]]) -> str:
    """A plain-text table: figure, ours and the limit (median / p95, or a rate), the ratio, notes."""
    rows = [("figure", "ours (median / p95)", "limit (median / p95)", "ratio", "notes")]
    for item in figures:
        ratio = item.get("ratio")
        rows.append(
            (
                item["name"],
                _shown(item["ours"]),
                _shown(item.get("limit")),
                "-" if ratio is None else f"{ratio:.2f}×",
                _notes(item.get("notes") or {}),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = [f"== {name} ({size})"]
    for index, row in enumerate(rows):
        cells = [row[column].ljust(widths[column]) for column in range(4)]
        lines.append("  ".join(cells) + "  " + row[4])
        if index == 0:
            lines.append("  ".join("-" * width for width in widths) + "  -----")
    return "\n".join(lines) + "\n"


class Results:
    """Collects one benchmark's figures; ``write`` prints the table and writes the JSON."""

    def __init__(self, name: str, size: str, parameters: dict[str, Any]) -> None:
        self.name = name
        self.size = size
        self.parameters = parameters
        self.figures: list[Figure] = []
        self.started = time.monotonic()
        self.machine = machine()

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def write(self, out: Path) -> Path:
        figures = [figure.as_dict() for figure in self.figures]
        document = {
            "benchmark": self.name,
            "size": self.size,
            "finished_at": datetime.now(tz=UTC).isoformat(timespec="seconds"),
            "duration_seconds": round(time.monotonic() - self.started, 1),
            "machine": self.machine,
            "parameters": self.parameters,
            "figures": figures,
        }
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{self.name}.json"
        path.write_text(json.dumps(document, indent=2) + "\n")
        sys.stdout.write(render_table(self.name, self.size, figures))
        sys.stdout.write(f"   written to {path}\n")
        sys.stdout.flush()
        return path
