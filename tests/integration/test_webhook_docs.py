"""The Python in ``docs/webhooks.md`` runs, in order, against a real gateway (served over
HTTP on a free port), a worker, NATS and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import socket
import types
from pathlib import Path

import pytest
import uvicorn

from ferryman_worker.gateway import Gateway, create_app
from tests.harness import Stack, wait_for

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_webhooks_guide_runs(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) == 4, "docs/webhooks.md lost its examples"
    port = free_port()
    monkeypatch.setenv("FERRYMAN_EVENT_API", f"http://127.0.0.1:{port}")
    for name, value in (("STRIPE", "whsec_docs"), ("GITHUB", "gh-docs"), ("CARRIER", "c-docs")):
        monkeypatch.setenv(f"{name}_WEBHOOK_SECRET", value)
    module = types.ModuleType("docs_webhooks")
    exec(compile(blocks[0], str(DOC), "exec"), module.__dict__)
    await stack.start_worker(module.fm)  # declares the doc's webhooks, as `ferryman dev` does

    server = uvicorn.Server(uvicorn.Config(
        # Auth off, as under `ferryman dev`, which the guide's senders talk to.
        create_app(Gateway(stack.settings(auth=False))),
        host="127.0.0.1", port=port, log_level="warning",
    ))  # fmt: skip
    serving = asyncio.create_task(server.serve())
    try:
        await wait_for(lambda: server.started, 30, "the gateway did not start")
        for block in blocks[1:]:
            # The blocks use a blocking HTTP client, as a sender's script would.
            await asyncio.to_thread(exec, compile(block, str(DOC), "exec"), module.__dict__)
    finally:
        server.should_exit = True
        await serving
    run = await stack.wait_run("evt_1")
    assert run[3] == {"paid": 4200}
