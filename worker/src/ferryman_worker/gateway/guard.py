"""The gateway's outermost layer: refuses unusable request targets, contains crashes.

- A path or query parameter with a NUL character (``%00``) or a lone surrogate can never
  name anything PostgreSQL stores, so it is refused here with a 400 naming the parameter,
  before routing.
- An unexpected exception in a handler is logged with its traceback and answered with a
  JSON 500 that carries ``Connection: close``, so a keep-alive client opens a fresh
  connection for its next request instead of finding this one dropped under it. The
  exception is not re-raised: the answer is complete and the server needs nothing more.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("ferryman.gateway")


class Guard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = bad_target(scope)
        if problem:
            await answer(send, 400, problem)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unexpected error answering %s %s", scope["method"], scope["path"])
            if started:
                raise  # half an answer is out: the server must drop the connection
            await answer(
                send,
                500,
                "internal error in the gateway; it is logged there. The request may be "
                "retried; if it fails again, please report it",
                close=True,
            )


def bad_target(scope: Scope) -> str | None:
    """Why the path or query cannot be served, or None."""
    if not _clean(scope["path"]):
        return "the URL path contains a NUL character or invalid Unicode"
    query = scope.get("query_string", b"")
    if query:
        # Parsed the way Starlette parses it, so we judge what the handler would see.
        for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if not _clean(key) or not _clean(value):
                return f"query parameter {key!r} contains a NUL character or invalid Unicode"
    return None


def _clean(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


async def answer(
    send: Send,
    status: int,
    message: str,
    *,
    close: bool = False,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = orjson.dumps({"error": message, "status": status})
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    headers.extend(extra or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
