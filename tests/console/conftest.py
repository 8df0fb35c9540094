"""A real console in a real browser: the gateway (`ferryman gateway`) and a worker
(`ferryman worker -m tests.apps.console_app`) as child processes over the session's real
PostgreSQL and a real NATS — what `ferryman dev` runs, without a fresh initdb per module —
driven by Playwright through Debian's Chromium (`/usr/bin/chromium`; Playwright's own
browser download cannot work here).

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

from ferryman_worker.dev.embedded import NatsServer, PostgresServer
from tests.conftest import TEMPLATE
from tests.harness import new_database

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
API_TOKEN = "console-test-token"
WEBHOOK_SECRET = "parcels-signing-secret"
FUNCTIONS = 9  # in tests.apps.console_app, the bookings example's included


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
    """A gateway and a worker for ``tests.apps.console_app`` on a free port, own database."""

    def __init__(self, pg: PostgresServer, tmp: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ledger = tmp / "ledger.jsonl"
        self.tmp = tmp
        self.nats = NatsServer(tmp / "nats")
        self.nats.start()
        self.env = {
            **os.environ,
            "FERRYMAN_DATABASE_URL": new_database(pg, TEMPLATE),
            "FERRYMAN_NATS_URL": self.nats.url,
            "FERRYMAN_EXAMPLES_LEDGER": str(self.ledger),
            # Open, as `ferryman dev` is (the gateway alone requires tokens by default).
            "FERRYMAN_AUTH": "false",
            "CONSOLE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
        # The console's gateway is open, as in `ferryman dev`; a second one on the same
        # data requires an API token (what a cluster runs), for the sign-in scenario.
        self.secure_port = _free_port()
        self.secure_url = f"http://127.0.0.1:{self.secure_port}"
        self.procs = [
            self._spawn("gateway", "gateway", "--port", str(self.port), FERRYMAN_AUTH="false"),
            self._spawn(
                "secure-gateway", "gateway", "--port", str(self.secure_port),
                FERRYMAN_AUTH="true", FERRYMAN_API_TOKEN=API_TOKEN,
            ),
            self._spawn("worker", "worker", "-m", MODULE),
        ]  # fmt: skip

    def _spawn(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        with (self.tmp / f"{name}.log").open("wb") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "ferryman_worker.cli", *args],
                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env={**self.env, **env},
                start_new_session=True,
            )  # fmt: skip

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.tmp.glob("*.log"))

    def wait_ready(self, functions: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"gateway or worker exited:\n{self.logs()}")
            try:
                found = httpx.get(f"{self.url}/v1/functions", timeout=2).json()["data"]
                secure = httpx.get(f"{self.secure_url}/health", timeout=2).status_code
                if len(found) >= functions and secure == 200:
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.3)
        raise TimeoutError(f"console stack not ready in {timeout}s:\n{self.logs()}")

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
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.nats.stop()


@pytest.fixture(scope="module")
def dev(pg_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    _require_browser()
    server = DevServer(pg_server, tmp_path_factory.mktemp("console"))
    try:
        server.wait_ready(functions=FUNCTIONS)
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
