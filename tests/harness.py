"""The integration harness: real PostgreSQL and NATS JetStream, started by the tests.

- one PostgreSQL server per test session; each test gets a fresh, migrated database;
- one NATS server per test (fresh JetStream state), which a test can kill and restart;
- workers in-process (fast) or as ``ferryman worker`` child processes (to ``kill -9``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg

from ferryman import Event, Ferryman
from ferryman_worker.common.settings import load_settings
from ferryman_worker.dev.embedded import NatsServer, PostgresServer
from ferryman_worker.storage.events import EventBus
from ferryman_worker.storage.migrating import migrate
from ferryman_worker.transport import natsconn
from ferryman_worker.worker import Worker

ROOT = Path(__file__).resolve().parents[1]
_db_counter = itertools.count()


class Stack:
    """One test's PostgreSQL database, NATS server, and the workers it started."""

    def __init__(self, pg: PostgresServer, db_url: str, nats: NatsServer, tmp: Path) -> None:
        self.pg = pg
        self.db_url = db_url
        self.nats = nats
        self.tmp = tmp
        self.ledger = tmp / "ledger.jsonl"
        self.workers: list[Worker] = []
        self.processes: list[subprocess.Popen[bytes]] = []
        self._bus: EventBus | None = None

    # -- workers ------------------------------------------------------------------------

    def settings(self, **overrides: Any) -> Any:
        values = {
            "database_url": self.db_url,
            "nats_url": self.nats.url,
            "lease_seconds": 3.0,
            "repair_interval_seconds": 2.0,
            **overrides,
        }
        return load_settings(**values)

    async def start_worker(self, *apps: Ferryman, **overrides: Any) -> Worker:
        worker = Worker(list(apps), self.settings(**overrides))
        await worker.start()
        self.workers.append(worker)
        return worker

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "FERRYMAN_DATABASE_URL": self.db_url, "FERRYMAN_NATS_URL": self.nats.url,
            "FERRYMAN_LEASE_SECONDS": "3", "FERRYMAN_REPAIR_INTERVAL_SECONDS": "2",
            "FERRYMAN_EXAMPLES_LEDGER": str(self.ledger),
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
            **extra,
        }  # fmt: skip

    def spawn_worker(self, module: str, **extra: str) -> subprocess.Popen[bytes]:
        """``ferryman worker -m module`` as a child process (so it can be killed -9)."""
        log = (self.tmp / f"worker-{len(self.processes)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "ferryman_worker.cli", "worker", "-m", module],
            env=self.env(**extra),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(ROOT),
            start_new_session=True,
        )
        self.processes.append(proc)
        return proc

    async def wait_worker_ready(self, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
        log = self.tmp / f"worker-{self.processes.index(proc)}.log"
        await wait_for(
            lambda: "hosting" in log.read_text(errors="replace"),
            timeout,
            f"worker did not start; log:\n{log}",
        )

    # -- events and runs ----------------------------------------------------------------

    async def bus(self) -> EventBus:
        if self._bus is None:
            from psycopg_pool import AsyncConnectionPool

            pool = AsyncConnectionPool(
                self.db_url, min_size=1, max_size=4, kwargs={"autocommit": True}, open=False
            )
            await pool.open()
            nc = await natsconn.connect(self.nats.url, "tests", logging.getLogger("tests"))
            self._bus = EventBus(pool, nc.jetstream())
            self._bus_nc = nc
        return self._bus

    async def send(
        self, name: str, data: dict[str, Any] | None = None, id: str | None = None
    ) -> str:
        bus = await self.bus()
        [event_id] = await bus.send([Event(name=name, data=data or {}, id=id)])
        return event_id

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            return conn.execute(sql.encode(), params).fetchall()

    def runs_of(self, event_id: str) -> list[tuple[Any, ...]]:
        return self.query(
            "SELECT id, function_id, status, output, error FROM runs WHERE %s = ANY(event_ids)",
            event_id,
        )

    async def wait_run(
        self,
        event_id: str,
        status: str = "COMPLETED",
        timeout: float = 30,
        function_id: str | None = None,
    ) -> tuple[Any, ...]:
        """Wait until the run ``event_id`` started (of ``function_id``) reaches ``status``."""
        found: list[tuple[Any, ...]] = []

        def check() -> bool:
            found[:] = [
                r for r in self.runs_of(event_id) if function_id is None or r[1] == function_id
            ]
            return any(r[2] == status for r in found)

        await wait_for(check, timeout, lambda: f"run for event {event_id} never {status}: {found}")
        return next(r for r in found if r[2] == status)

    def steps_of(self, run_id: str) -> dict[str, tuple[Any, ...]]:
        rows = self.query(
            "SELECT step_id, status, attempts, output FROM steps WHERE run_id = %s", run_id
        )
        return {r[0]: r for r in rows}

    # -- teardown -----------------------------------------------------------------------

    async def close(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for worker in self.workers:
            if not worker.stopping.is_set():
                await worker.stop(grace=1)
        if self._bus is not None:
            await self._bus_nc.close()
            await self._bus.pool.close()


async def wait_for(
    check: Callable[[], bool | Awaitable[bool]],
    timeout: float,
    message: Any = "condition never held",
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(message() if callable(message) else message)
        await asyncio.sleep(0.05)


def new_database(pg: PostgresServer, template: str) -> str:
    name = f"t{os.getpid()}_{next(_db_counter)}"
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'.encode())
    return pg.url.rsplit("/", 1)[0] + "/" + name


@contextlib.asynccontextmanager
async def own_postgres(stack: Stack) -> AsyncIterator[Stack]:
    """``stack`` on a PostgreSQL of its own, for a test that stops or kills it: doing that
    to the session's server disturbs other tests, and its crash recovery after hundreds of
    test databases can outlast the test's own waits."""
    own = PostgresServer(stack.tmp / "own-pg")
    own.start()
    try:
        await migrate(own.url)
        alone = Stack(own, own.url, stack.nats, stack.tmp / "alone")
        alone.tmp.mkdir()
        try:
            yield alone
        finally:
            await alone.close()
    finally:
        own.stop()
