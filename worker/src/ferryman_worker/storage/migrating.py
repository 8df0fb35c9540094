"""Schema migrations: numbered ``.sql`` files applied in order, each once.

Applying takes a transaction-level advisory lock, so concurrent starts (a dozen workers
rolling out at once) serialise and each migration runs exactly once. The version table
records what has run.
"""

from __future__ import annotations

import re
from importlib import resources

import psycopg

_LOCK_ID = 0x46_45_52_52  # "FERR"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def available() -> list[tuple[int, str, str]]:
    """All migrations shipped with this version: ``(version, name, sql)``, in order."""
    found = []
    for entry in resources.files("ferryman_worker.storage.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text()))
    return sorted(found)


async def migrate(conninfo: str) -> list[str]:
    """Bring the database to the newest schema; return the names applied now.

    Everything happens in one transaction, so the advisory lock is held until all
    migrations are applied and a concurrent caller then finds nothing left to do.
    """
    applied: list[str] = []
    connect = psycopg.AsyncConnection.connect(conninfo, autocommit=False)
    async with await connect as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS ferryman_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur = await conn.execute("SELECT version FROM ferryman_migrations")
        done = {row[0] for row in await cur.fetchall()}
        for version, name, sql in available():
            if version in done:
                continue
            await conn.execute(sql.encode())
            await conn.execute(
                "INSERT INTO ferryman_migrations (version, name) VALUES (%s, %s)",
                (version, name),
            )
            applied.append(name)
    return applied
