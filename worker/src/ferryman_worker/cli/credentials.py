"""``ferryman keys`` and ``ferryman tokens``: create, list and revoke credentials.

::

    ferryman keys create billing-service        an event key for POST /e/{key}
    ferryman tokens create ci --role operate     an API token (read or operate)
    ferryman keys list | tokens list [--revoked]
    ferryman keys revoke billing-service

They write PostgreSQL directly (FERRYMAN_DATABASE_URL): whoever can reach the database is
already an administrator, and the first token cannot be created through an API that
needs a token. The secret is printed once; only its digest is stored.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ferryman_worker.storage import credentials
from ferryman_worker.storage.credentials import CredentialError, Kind


def add_commands(sub: Any) -> None:
    for kind, word, what in (
        ("key", "keys", "event keys for POST /e/{key}"),
        ("token", "tokens", "API tokens for the REST API, console and CLI"),
    ):
        parser = sub.add_parser(word, help=f"create, list and revoke {what}")
        actions = parser.add_subparsers(dest=f"{word}_command", required=True, metavar="ACTION")
        create = actions.add_parser("create", help="create one and print its secret once")
        create.add_argument("name", help="who or what uses it, e.g. billing-service")
        if kind == "token":
            create.add_argument(
                "--role", required=True, choices=credentials.ROLES, help="read or operate"
            )
        listing = actions.add_parser("list", help="live ones (never their secrets)")
        listing.add_argument("--revoked", action="store_true", help="include revoked ones")
        revoke = actions.add_parser("revoke", help="stop accepting it (within seconds)")
        revoke.add_argument("name")
        for action, func in (("create", _create), ("list", _list), ("revoke", _revoke)):
            cmd = actions.choices[action]
            cmd.add_argument("--database-url", help="PostgreSQL URL (FERRYMAN_DATABASE_URL)")
            cmd.set_defaults(func=func, kind=kind)


def _url(args: argparse.Namespace) -> str:
    from ferryman_worker.common.settings import SettingsError, load_settings

    try:
        settings = load_settings(database_url=args.database_url)
        settings.require("database_url")
    except SettingsError as exc:
        raise SystemExit(f"error: {exc}") from None
    return settings.database_url


def _create(args: argparse.Namespace) -> int:
    kind: Kind = args.kind
    try:
        secret = asyncio.run(
            credentials.create(_url(args), kind, args.name, getattr(args, "role", None))
        )
    except CredentialError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(secret)
    use = (
        "send events to /e/<this key>"
        if kind == "key"
        else "send 'Authorization: Bearer <this token>' or set FERRYMAN_API_TOKEN"
    )
    print(f"(shown once; {use})", flush=True)
    return 0


def _list(args: argparse.Namespace) -> int:
    rows = asyncio.run(credentials.listing(_url(args), args.kind, revoked=args.revoked))
    print(f"{'NAME':<32}{'ROLE':<9}{'STARTS':<10}{'CREATED':<27}REVOKED")
    for c in rows:
        created = c.created_at.isoformat()[:19]
        revoked = c.revoked_at.isoformat()[:19] if c.revoked_at else "-"
        print(f"{c.name:<32}{c.role or '-':<9}{c.hint:<10}{created:<27}{revoked}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    if not asyncio.run(credentials.revoke(_url(args), args.kind, args.name)):
        raise SystemExit(f"error: no live {args.kind} named {args.name!r} (see `list`)")
    print(f"revoked {args.name}; the gateways stop accepting it within seconds")
    return 0
