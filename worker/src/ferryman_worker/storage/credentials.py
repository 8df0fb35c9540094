"""Event keys and API tokens in PostgreSQL: create, list, revoke, load the live ones.

The one module that writes the ``event_keys`` and ``api_tokens`` tables (migration 0040).
A secret is 32 random bytes, shown once at creation; only its SHA-256 digest is stored.
A fast, unsalted digest is right here: the secrets are random and long, so there is
nothing to brute-force, and the gateway can look a presented secret up by its digest.
The gateway's side (caching, checking in constant time) is ``gateway/auth.py``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg

Kind = Literal["key", "token"]
ROLES = ("read", "operate")
_TABLE = {"key": "event_keys", "token": "api_tokens"}
_PREFIX = {"key": "fmk_", "token": "fmt_"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")


class CredentialError(ValueError):
    """A name or role that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class Credential:
    kind: Kind
    name: str
    role: str | None
    hint: str
    created_at: datetime
    revoked_at: datetime | None


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def new_secret(kind: Kind) -> str:
    return _PREFIX[kind] + secrets.token_urlsafe(32)


def _what(kind: Kind) -> str:
    return "event key" if kind == "key" else "API token"


async def create(conninfo: str, kind: Kind, name: str, role: str | None = None) -> str:
    """Store a new credential; return its secret (the only time it is known)."""
    if not _NAME.match(name):
        raise CredentialError(
            f"{_what(kind)} name {name!r}: use up to 100 letters, digits and . _ @ -"
        )
    if kind == "token" and role not in ROLES:
        raise CredentialError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    secret = new_secret(kind)
    columns = "name, digest, hint" + (", role" if kind == "token" else "")
    values: list[Any] = [name, digest(secret), secret[:8]] + ([role] if kind == "token" else [])
    sql = f"INSERT INTO {_TABLE[kind]} ({columns}) VALUES ({', '.join(['%s'] * len(values))})"
    try:
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
            await conn.execute(sql.encode(), values)
    except psycopg.errors.UniqueViolation:
        raise CredentialError(
            f"an {_what(kind)} named {name!r} exists; revoke it first or choose another name"
        ) from None
    return secret


async def revoke(conninfo: str, kind: Kind, name: str) -> bool:
    """Revoke the live credential called ``name``; False if there is none."""
    sql = f"UPDATE {_TABLE[kind]} SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL"
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        cur = await conn.execute(sql.encode(), (name,))
        return cur.rowcount > 0


async def listing(conninfo: str, kind: Kind, *, revoked: bool = False) -> list[Credential]:
    role = "role" if kind == "token" else "NULL"
    where = "" if revoked else " WHERE revoked_at IS NULL"
    sql = (
        f"SELECT name, {role}, hint, created_at, revoked_at FROM {_TABLE[kind]}{where} "
        "ORDER BY created_at, id"
    )
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        cur = await conn.execute(sql.encode())
        return [Credential(kind, *row) for row in await cur.fetchall()]


async def live(conn: psycopg.AsyncConnection[Any]) -> tuple[dict[bytes, str], dict[bytes, Any]]:
    """Digests of the live event keys (to name) and API tokens (to ``(name, role)``)."""
    cur = await conn.execute("SELECT digest, name FROM event_keys WHERE revoked_at IS NULL")
    keys = {bytes(d): n for d, n in await cur.fetchall()}
    cur = await conn.execute("SELECT digest, name, role FROM api_tokens WHERE revoked_at IS NULL")
    tokens = {bytes(d): (n, r) for d, n, r in await cur.fetchall()}
    return keys, tokens
