"""A real console in a real browser: `ferryman dev` in a child process, driven by Playwright
through Debian's Chromium (`/usr/bin/chromium`; Playwright's own download cannot work here).

Without Chromium the browser tests are skipped, unless ``FERRYMAN_REQUIRE_BROWSER=1``
(as ``.ci/run`` sets, after installing it) makes that an error.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("FERRYMAN_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MODULE = "tests.apps.console_app"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _require_browser() -> None:
    if not (Path(CHROMIUM).exists() and shutil.which(CHROMIUM)):
        message = f"no Chromium at {CHROMIUM}: apt-get install -y chromium (see .ci/run)"
        if os.environ.get("FERRYMAN_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)


class DevServer:
    """``ferryman dev -m tests.apps.console_app`` on a free port, with its own data."""

    def __init__(self, tmp: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ledger = tmp / "ledger.jsonl"
        self.log = tmp / "dev.log"
        env = {**os.environ, "FERRYMAN_EXAMPLES_LEDGER": str(self.ledger)}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ferryman_worker.cli", "dev", "-m", MODULE,
                 "--port", str(self.port), "--data-dir", str(tmp / "data"), "--no-reload"],
                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env, start_new_session=True,
            )  # fmt: skip

    def wait_ready(self, functions: int, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ferryman dev exited:\n{self.log.read_text()}")
            try:
                found = httpx.get(f"{self.url}/v1/functions", timeout=2).json()["data"]
                if len(found) >= functions:
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.3)
        raise TimeoutError(f"ferryman dev not ready in {timeout}s:\n{self.log.read_text()}")

    async def send(self, name: str, data: dict[str, Any] | None = None) -> str:
        async with httpx.AsyncClient(base_url=self.url) as client:
            response = await client.post("/e/dev", json={"name": name, "data": data or {}})
        response.raise_for_status()
        return str(response.json()["ids"][0])

    async def get(self, path: str) -> Any:
        async with httpx.AsyncClient(base_url=self.url) as client:
            response = await client.get(path)
        response.raise_for_status()
        return response.json()["data"]

    async def runs(self, event_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self.get(f"/v1/events/{event_id}/runs")
        return found

    async def wait_run(self, event_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for run in await self.runs(event_id):
                if run["status"] == status:
                    return run
            await asyncio.sleep(0.2)
        raise TimeoutError(f"no {status} run for {event_id}: {await self.runs(event_id)}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    _require_browser()
    server = DevServer(tmp_path_factory.mktemp("console-dev"))
    try:
        server.wait_ready(functions=6)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
async def browser(dev: DevServer) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Any, dev: DevServer) -> AsyncIterator[Any]:
    context = await browser.new_context(
        base_url=dev.url, viewport={"width": 1280, "height": 860}, color_scheme="light"
    )
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    await context.close()
    assert not errors, f"JavaScript errors in the console: {errors}"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: ``FERRYMAN_SCREENSHOTS`` (docs/console to refresh the docs)."""
    target = Path(os.environ.get("FERRYMAN_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target
