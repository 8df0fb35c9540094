"""The gateway's guard over a real uvicorn server: a crash answers a clean 500."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ferryman_worker.gateway.guard import Guard


async def boom(request: Request) -> Response:
    raise RuntimeError("a bug")


async def fine(request: Request) -> Response:
    return JSONResponse({"ok": True})


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = Starlette(
        routes=[Route("/boom", boom), Route("/ok", fine)], middleware=[Middleware(Guard)]
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical")
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve())
    for _ in range(500):
        if srv.started:
            break
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    await task


async def test_a_crash_answers_json_500_that_closes_the_connection(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with httpx.AsyncClient(base_url=server) as client:
        response = await client.get("/boom")
        assert response.status_code == 500
        assert response.headers["connection"] == "close"
        assert "internal error" in response.json()["error"]
        # The client's pooled connection is not reused after Connection: close, so the
        # next request on the same client succeeds.
        for _ in range(3):
            assert (await client.get("/ok")).json() == {"ok": True}
            assert (await client.get("/boom")).status_code == 500
    assert "a bug" in caplog.text


async def test_nul_in_query_or_path_is_refused_before_routing(server: str) -> None:
    async with httpx.AsyncClient(base_url=server) as client:
        response = await client.get("/ok", params={"q": "a\x00"})
        assert response.status_code == 400
        assert "query parameter 'q'" in response.json()["error"]
        response = await client.get("/ok%00")
        assert response.status_code == 400
        assert "path" in response.json()["error"]
