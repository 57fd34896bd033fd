"""The database's clock.

Liveness (late heartbeats, idle engines) is judged against timestamps written with the database's
clock, so that a host whose own clock is skewed is not judged lost or idle by mistake. A sweep reads
"now" from the database once per run and passes it down.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import connection

__all__ = ["db_now"]


def db_now() -> datetime:
    """The current time according to the database, as an aware UTC datetime."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT clock_timestamp()")
            (value,) = cursor.fetchone()
            return value.astimezone(UTC)
        if connection.vendor == "sqlite":
            cursor.execute("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")
            (text,) = cursor.fetchone()
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
        cursor.execute("SELECT CURRENT_TIMESTAMP")
        (value,) = cursor.fetchone()
        return value if value.tzinfo else value.replace(tzinfo=UTC)
