"""Hostile and careless input to the gateway: a 4xx naming the field, nothing stored.

Each case here answered a 500, a misleading 503, or read the whole body before refusing
it, before the gateway grew ``limits.py`` and ``guard.py``.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest

from ferryman_worker.gateway import Gateway, create_app
from tests.harness import Stack

pytestmark = pytest.mark.integration

MB = 1024 * 1024


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    gateway = Gateway(stack.settings(event_key="sekret", api_token="tok"))
    await gateway.open()
    transport = httpx.ASGITransport(app=create_app(gateway))
    headers = {"Authorization": "Bearer tok"}
    async with httpx.AsyncClient(transport=transport, base_url="http://gw", headers=headers) as c:
        yield c
    await gateway.close()


def stored(stack: Stack) -> tuple[int, int]:
    """(events, runs) in the database."""
    row = stack.query("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM runs)")[0]
    return int(row[0]), int(row[1])


class Endless:
    """A streamed body of 1 MB chunks (no Content-Length) that counts what was read."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.read += 1
            yield b"[" + b" " * (MB - 1)


@pytest.mark.parametrize("path", ["/e/sekret", "/v1/runs/cancel", "/v1/runs/r1/replay"])
async def test_a_huge_streamed_body_is_refused_before_it_is_read_whole(
    stack: Stack, api: httpx.AsyncClient, path: str
) -> None:
    body = Endless(300)
    response = await api.post(path, content=body)
    assert response.status_code == 413
    assert "the limit is" in response.json()["error"]
    assert response.headers["connection"] == "close"
    assert body.read <= 8  # the event limit is ~6 MB: at most that much was ever held
    assert stored(stack) == (0, 0)


async def test_a_declared_content_length_over_the_limit_is_refused_unread(
    api: httpx.AsyncClient,
) -> None:
    body = Endless(300)
    headers = {"Content-Length": str(300 * MB)}
    response = await api.post("/e/sekret", content=body, headers=headers)
    assert response.status_code == 413
    assert body.read == 0


def nested(depth: int) -> bytes:
    return b'{"name": "deep", "data": {"x": ' + b"[" * depth + b"]" * depth + b"}}"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (nested(300), "nested more than 64 levels"),
        (nested(1000), "nested more than 64 levels"),
        (nested(5000), "not valid JSON"),
        (b'{"name": "ok", "data": {"n": 123456789012345678901234567890}}', "64 bits"),
        (b'{"name": "ok", "data": {"n": -99999999999999999999}}', "64 bits"),
        (b'{"name": "ok", "data": {"n": ' + b"9" * 5000 + b"}}", "not valid JSON"),
        (b'{"name": "ok", "data": {}, "ts": 18446744073709551615}', "'ts' must be"),
        (b'{"name": "ok", "data": {"n": NaN}}', "not valid JSON"),
        (b'{"name": "ok", "data": {"n": 1e999}}', "not valid JSON"),
        (b'{"name": "ok", "data": {"n": -Infinity}}', "not valid JSON"),
        (b'{"name": "ok", "data": {"s": "\\ud800"}}', "not valid JSON"),
        (b'{"name": "ok", "data": {"s": "\xff\xfe"}}', "not valid JSON"),
        (b'{"name": "ok", "data": {"s": "a\\u0000b"}}', "body.data.s: text cannot contain NUL"),
        (b'{"name": "ok", "data": {"a\\u0000": 1}}', "body.data: a key contains a NUL"),
        (b'{"name": "a\\u0000b", "data": {}}', "body.name"),
        (b'{"name": "ok", "id": "x\\u0000", "data": {}}', "body.id"),
        (b'{"name": "ok", "data": {}, "user": "bob"}', "'user' must be an object"),
        (b'{"name": "ok", "data": {}, "user": [1]}', "'user' must be an object"),
        (b'[{"name": "a", "id": "same"}, {"name": "b", "id": "same"}]', "also the id of event 0"),
        (b'{"name": "ok", "data": {}, "ts": true}', "'ts' must be"),
    ],
)
async def test_bad_event_bodies_are_refused_with_the_field_named_and_nothing_stored(
    stack: Stack, api: httpx.AsyncClient, raw: bytes, message: str
) -> None:
    response = await api.post("/e/sekret", content=raw)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]
    assert stored(stack) == (0, 0)


async def test_big_but_valid_numbers_are_kept_exactly(stack: Stack, api: httpx.AsyncClient) -> None:
    raw = b'{"name": "ok", "data": {"big": 18446744073709551615, "neg": -9223372036854775808}}'
    response = await api.post("/e/sekret", content=raw)
    assert response.status_code == 200, response.text
    [event] = (await api.get("/v1/events")).json()["data"]
    assert event["data"] == {"big": 2**64 - 1, "neg": -(2**63)}
    floats = await api.post("/e/sekret", content=b'{"name": "f", "data": {"f": 1e300}}')
    assert floats.status_code == 200


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/runs", {"function_id": "a\x00b"}),
        ("/v1/runs", {"cursor": base64.urlsafe_b64encode(b"2026-01-01T00:00:00|r\x00").decode()}),
        ("/v1/runs", {"cursor": "a\x00"}),
        ("/v1/runs", {"status": "\x00"}),
        ("/v1/events", {"name": "x\x00"}),
        ("/v1/runs/ab%00cd", {}),
        ("/v1/events/ab%00cd/runs", {}),
    ],
)
async def test_nul_characters_in_paths_and_query_parameters_are_400(
    api: httpx.AsyncClient, path: str, params: dict[str, str]
) -> None:
    response = await api.get(path, params=params)
    assert response.status_code == 400, response.text
    assert "NUL" in response.json()["error"] or "cursor" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"function_id": ["a"]}, "function_id must be a string"),
        ({"function_id": {"a": 1}}, "function_id must be a string"),
        ({"function_id": 7}, "function_id must be a string"),
        ({"function_id": "f", "status": 3}, "status must be a string"),
        ({"function_id": "f", "after": 17}, "after must be a string"),
        ({"function_id": "f", "before": ["x"]}, "before must be a string"),
        ({"function_id": "f" * 300 * 1024}, "the limit is"),
        ({"function_id": "a\x00b"}, "NUL"),
        ([1, 2], "body must be a JSON object"),
    ],
)
@pytest.mark.parametrize("action", ["cancel", "replay"])
async def test_bulk_filters_of_the_wrong_type_are_400(
    stack: Stack, api: httpx.AsyncClient, action: str, body: object, message: str
) -> None:
    response = await api.post(f"/v1/runs/{action}", json=body)
    assert response.status_code in (400, 413), response.text
    assert message in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"from_step": 5}, "from_step must be a string"),
        ({"from_step": "s\x00"}, "NUL"),
        ({"from_stpe": "s"}, "unknown field"),
        ("nope", "body must be a JSON object"),
    ],
)
async def test_replay_bodies_are_checked(
    api: httpx.AsyncClient, body: object, message: str
) -> None:
    response = await api.post("/v1/runs/r1/replay", json=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


@pytest.mark.parametrize("name", ["a b", "a*b", "x>"])
async def test_a_webhook_name_that_cannot_exist_is_404_not_503(
    api: httpx.AsyncClient, name: str
) -> None:
    assert (await api.post(f"/webhooks/{name}", content=b"{}")).status_code == 404
    assert (await api.get(f"/v1/webhooks/{name}")).status_code == 404
