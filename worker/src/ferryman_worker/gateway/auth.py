"""Who may call what: event keys for ingest, API tokens (read, operate) for everything else.

Deny by default. Every route needs an API token unless it was marked otherwise where it is
declared: ``public(route)`` (health, readiness, the OpenAPI document, the console's static
files, webhooks with their own signatures) or ``needs(route, EVENT_KEY)`` (``POST
/e/{event_key}``). An unmarked route needs the ``read`` role for GET and HEAD and the
``operate`` role for every other method; a path no route knows needs a token too, so a
new route added without thought is protected, not open.

Credentials come from three places:

- ``FERRYMAN_API_TOKEN`` / ``FERRYMAN_EVENT_KEY`` on the gateway: one bootstrap token with
  the operate role and one event key (what the Helm chart generates);
- the ``api_tokens`` and ``event_keys`` tables (``ferryman tokens|keys create``), cached
  here and re-read every :data:`REFRESH_SECONDS`, so a revocation bites within that time;
- a trusted proxy (oauth2-proxy style): a header naming the signed-in user, honoured only
  from the configured proxy addresses (or from anywhere when explicitly enabled).

Presented secrets are hashed (SHA-256) and compared with ``hmac.compare_digest``; stored
credentials are found by that digest, so timing can reveal at most bits of a digest,
never of a secret. With ``auth`` off (``ferryman dev``) everything is open except that a
configured ``FERRYMAN_EVENT_KEY`` is still required in ``/e/{key}``.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import time
from dataclasses import dataclass
from typing import Any, TypeVar

from psycopg_pool import AsyncConnectionPool
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from ferryman_worker.common import metrics
from ferryman_worker.common.settings import Settings
from ferryman_worker.gateway.guard import answer
from ferryman_worker.storage import credentials

log = logging.getLogger("ferryman.gateway")

PUBLIC, EVENT_KEY, READ, OPERATE = "public", "event_key", "read", "operate"
REFRESH_SECONDS = 2.0
_ATTR = "ferryman_access"
R = TypeVar("R", bound=BaseRoute)


def needs(route: R, level: str) -> R:
    """Mark what ``route`` needs: PUBLIC, EVENT_KEY, READ or OPERATE."""
    if level not in (PUBLIC, EVENT_KEY, READ, OPERATE):
        raise ValueError(f"unknown access level {level!r}")
    setattr(route, _ATTR, level)
    return route


def public(route: R) -> R:
    """Mark ``route`` as reachable without any credential."""
    return needs(route, PUBLIC)


@dataclass(frozen=True)
class Identity:
    name: str
    role: str


class CredentialsUnavailable(Exception):
    """The credentials could not be read yet (PostgreSQL unreachable at start)."""


class Authority:
    """Checks event keys and API tokens against the settings and the cached tables."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool: AsyncConnectionPool | None = None
        self._keys: dict[bytes, str] = {}
        self._tokens: dict[bytes, tuple[str, str]] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()
        self._env_token = _digest_or_none(settings.api_token)
        self._env_key = _digest_or_none(settings.event_key)
        self._proxies = [
            ipaddress.ip_network(p.strip(), strict=False)
            for p in settings.trusted_proxies.split(",")
            if p.strip()
        ]

    async def _live(self) -> tuple[dict[bytes, str], dict[bytes, tuple[str, str]]]:
        loaded = self._loaded_at
        if loaded is not None and time.monotonic() - loaded < REFRESH_SECONDS:
            return self._keys, self._tokens
        async with self._lock:
            loaded = self._loaded_at
            if loaded is None or time.monotonic() - loaded >= REFRESH_SECONDS:
                await self._reload()
        return self._keys, self._tokens

    async def _reload(self) -> None:
        try:
            if self.pool is None:
                raise CredentialsUnavailable("the gateway is not connected to PostgreSQL")
            async with self.pool.connection(timeout=5) as conn:
                self._keys, self._tokens = await credentials.live(conn)
            self._loaded_at = time.monotonic()
        except Exception as exc:
            if self._loaded_at is None:
                raise CredentialsUnavailable(str(exc)) from exc
            # Keep the last known credentials: PostgreSQL is down, so little else works.
            log.warning("could not refresh credentials (%s); using the last ones read", exc)
            self._loaded_at = time.monotonic()

    async def event_key_ok(self, key: str) -> bool:
        if not self.settings.auth:
            return self._env_key is None or _same(credentials.digest(key), self._env_key)
        presented = credentials.digest(key)
        if self._env_key is not None and _same(presented, self._env_key):
            return True
        keys, _ = await self._live()
        return presented in keys

    async def identify(self, scope: Scope) -> Identity | None:
        """Who sent this request, or None if nobody we know."""
        headers = _headers(scope)
        authorization = headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            presented = credentials.digest(token.strip())
            if self._env_token is not None and _same(presented, self._env_token):
                return Identity("FERRYMAN_API_TOKEN", OPERATE)
            _, tokens = await self._live()
            found = tokens.get(presented)
            return Identity(*found) if found else None
        header = self.settings.trusted_proxy_header.lower()
        if header and headers.get(header) and self._from_proxy(scope):
            user = headers[header]
            operators = {u.strip() for u in self.settings.proxy_operators.split(",")}
            role = OPERATE if user in operators else self.settings.proxy_role
            return Identity(user, role)
        return None

    def _from_proxy(self, scope: Scope) -> bool:
        if self.settings.trust_proxy_header_from_any:
            return True
        client = scope.get("client")
        if not client or not self._proxies:
            return False
        try:
            address = ipaddress.ip_address(client[0])
        except ValueError:
            return False
        return any(address in network for network in self._proxies)


class Authenticate:
    """ASGI middleware: resolves the route a request goes to and checks what it needs."""

    def __init__(self, app: ASGIApp, authority: Authority) -> None:
        self.app = app
        self.authority = authority

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        level, params = self._resolve(scope)
        try:
            refusal = await self._check(scope, level, params)
        except CredentialsUnavailable as exc:
            await answer(send, 503, f"cannot check credentials yet ({exc}); retry shortly")
            return
        if refusal is not None:
            status, message = refusal
            # JSON, never a redirect: the console prompts for a token on 401. A body the
            # client is still sending is left unread, so the connection is closed after.
            await answer(
                send,
                status,
                message,
                close=scope["method"] not in ("GET", "HEAD"),
                extra=[(b"www-authenticate", b'Bearer realm="ferryman"')] if status == 401 else [],
            )
            return
        await self.app(scope, receive, send)

    def _resolve(self, scope: Scope) -> tuple[str, dict[str, Any]]:
        # The app's own route list, in the router's order, so the first match is the same
        # route the router will pick, including routes added after the app was built.
        routes: list[BaseRoute] = scope["app"].router.routes
        for route in routes:
            match, child = route.matches(scope)
            if match != Match.NONE:
                level = getattr(route, _ATTR, None) or _by_method(scope)
                return level, child.get("path_params", {})
        return _by_method(scope), {}

    async def _check(
        self, scope: Scope, level: str, params: dict[str, Any]
    ) -> tuple[int, str] | None:
        if level == PUBLIC:
            return None
        if level == EVENT_KEY:
            if await self.authority.event_key_ok(str(params.get("event_key", ""))):
                return None
            metrics.EVENTS_REJECTED.labels("401").inc()
            return 401, (
                "unknown event key: send to /e/<key> with a key from `ferryman keys create "
                "NAME` or the gateway's FERRYMAN_EVENT_KEY"
            )
        if not self.authority.settings.auth:
            return None
        identity = await self.authority.identify(scope)
        if identity is None:
            if "authorization" in _headers(scope):
                return 401, "unknown or revoked API token"
            return 401, (
                "this API needs a token: send 'Authorization: Bearer <token>'; create one "
                "with `ferryman tokens create NAME --role read|operate` (the CLI reads "
                "FERRYMAN_API_TOKEN)"
            )
        if level == OPERATE and identity.role != OPERATE:
            return 403, f"{identity.name!r} has the {identity.role} role; this needs operate"
        scope.setdefault("state", {})["identity"] = identity
        return None


def _by_method(scope: Scope) -> str:
    return READ if scope["method"] in ("GET", "HEAD") else OPERATE


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _same(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def _digest_or_none(secret: str) -> bytes | None:
    return credentials.digest(secret) if secret else None
