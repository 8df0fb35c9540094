"""What the gateway accepts from a client: bounded bodies, bounded JSON, clean text.

Every handler reads its body and its text fields through here, so input that can never
succeed (too big, too deep, NUL bytes PostgreSQL refuses, integers beyond 64 bits, NaN or
infinities, wrong types) is refused with a 4xx naming the field, before anything is stored
or sent to PostgreSQL. A :class:`BadRequest` raised anywhere in a handler becomes that
answer (``app.py`` registers the exception handler).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.requests import Request

# Deeper documents are refused: no event or filter needs more, and deep documents cost
# recursion in every later reader (PostgreSQL, the SDK, the console).
MAX_DEPTH = 64
MAX_JSON_BODY = 64 * 1024  # REST bodies: a filter or a step id
MAX_ID = 256  # run, event, step and function ids in bodies
INT_MIN, INT_MAX = -(2**63), 2**64 - 1  # what orjson writes back; beyond is refused


class BadRequest(Exception):
    """Input that can never succeed; ``status`` is the 4xx to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes ``limit`` bytes (never read whole first)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest("Content-Length must be a number of bytes")
        if int(declared) > limit:
            raise BadRequest(too_big(int(declared), limit), status=413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(too_big(size, limit, at_least=True), status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def too_big(size: int, limit: int, *, at_least: bool = False) -> str:
    more = "at least " if at_least else ""
    return f"request body is {more}{size} bytes; the limit is {limit}: send smaller requests"


def load_json(raw: bytes, what: str = "body") -> Any:
    """Parse and check a JSON document; :class:`BadRequest` says where it is wrong."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # orjson refuses NaN, Infinity, 1e999, lone surrogates, invalid UTF-8, depth > 1024.
        raise BadRequest(f"{what} is not valid JSON ({exc})") from None
    if check_json(value, what):
        _reject_huge_integers(raw, what)
    return value


def check_json(value: Any, where: str) -> bool:
    """Refuse deep nesting, NUL characters and out-of-range integers anywhere in ``value``.

    Returns True when a float at least 2**63 was seen: orjson reads integer literals
    beyond 64 bits as floats, so the caller re-reads the raw text to tell them apart.
    """
    suspicious = False
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadRequest(f"{path}: nested more than {MAX_DEPTH} levels deep")
        if isinstance(item, str):
            if "\x00" in item:
                raise BadRequest(f"{path}: text cannot contain NUL (\\u0000) characters")
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if not INT_MIN <= item <= INT_MAX:
                raise BadRequest(f"{path}: integer {item} does not fit in 64 bits")
        elif isinstance(item, float):
            suspicious = suspicious or abs(item) >= 2.0**63
        elif isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    raise BadRequest(f"{path}: a key contains a NUL (\\u0000) character")
                stack.append((child, f"{path}.{key}", depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item))
    return suspicious


def _reject_huge_integers(raw: bytes, what: str) -> None:
    def refuse(literal: str) -> int:
        # Length first: int() of a literal over 4,300 digits raises by itself.
        value = int(literal) if len(literal) <= 21 else None
        if value is None or not INT_MIN <= value <= INT_MAX:
            raise BadRequest(f"{what}: integer {literal[:40]} does not fit in 64 bits")
        return value

    # Nesting is already bounded (checked above), so the stdlib parser cannot recurse deep.
    json.loads(raw, parse_int=refuse)


async def json_object(request: Request, limit: int = MAX_JSON_BODY) -> dict[str, Any]:
    """A JSON object body for the REST API; an empty body is ``{}``."""
    raw = await read_body(request, limit)
    if not raw.strip():
        return {}
    body = load_json(raw)
    if not isinstance(body, dict):
        raise BadRequest(f"body must be a JSON object, got {_kind(body)}")
    return body


def text(value: Any, field: str, *, max_length: int = MAX_ID, optional: bool = True) -> str | None:
    """A string field of a body or query: type, length and NUL checked."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{field} must be a string, got {_kind(value)}")
    if len(value) > max_length:
        raise BadRequest(f"{field} is {len(value)} characters; the limit is {max_length}")
    if "\x00" in value:
        raise BadRequest(f"{field} cannot contain NUL (\\u0000) characters")
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )
