"""``ferryman dev``: everything on one machine, with nothing installed but this package.

Starts PostgreSQL and NATS from wheels with their data under ``.ferryman/`` (so a restart
resumes sleeping runs), applies migrations, serves the gateway on :8288 and runs a worker
for the module in a child process that is restarted when a ``.py`` file changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import uvicorn

from ferryman_worker.embedded import NatsServer, PostgresServer, free_port
from ferryman_worker.gateway import Gateway, create_app
from ferryman_worker.migrating import migrate
from ferryman_worker.settings import load_settings


def _say(text: str) -> None:
    print(f"ferryman dev | {text}", flush=True)


class WorkerProcess:
    def __init__(self, module: str, env: dict[str, str]) -> None:
        self.module = module
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ferryman_worker.cli",
                "worker",
                "-m",
                self.module,
                "--no-migrate",
            ],
            env=self.env,
        )

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def _watch(worker: WorkerProcess, root: Path, stop: asyncio.Event) -> None:
    from watchfiles import PythonFilter, awatch

    async for changes in awatch(root, watch_filter=PythonFilter(), stop_event=stop):
        names = ", ".join(sorted({Path(p).name for _, p in changes}))
        _say(f"{names} changed: restarting the worker")
        await asyncio.to_thread(worker.stop)
        worker.start()


async def run_dev(module: str, port: int, data_dir: Path, reload: bool) -> int:
    data_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, at start-up
    _say(f"data in {data_dir}/ (delete it to start afresh)")
    pg = PostgresServer(data_dir / "postgres")
    nats_server = NatsServer(data_dir / "nats")
    _say("starting PostgreSQL ...")
    pg.start()
    _say("starting NATS JetStream ...")
    nats_server.start()
    try:
        await migrate(pg.url)
        env = {
            **os.environ,
            "FERRYMAN_DATABASE_URL": pg.url,
            "FERRYMAN_NATS_URL": nats_server.url,
            "FERRYMAN_EVENT_API": f"http://127.0.0.1:{port}",
            # The worker serves its metrics on loopback; the gateway's /metrics merges them.
            "FERRYMAN_METRICS_PORT": os.environ.get("FERRYMAN_METRICS_PORT") or str(free_port()),
            "FERRYMAN_METRICS_HOST": "127.0.0.1",
        }
        os.environ.update(env)
        settings = load_settings(database_url=pg.url, nats_url=nats_server.url, port=port)
        worker = WorkerProcess(module, env)
        worker.start()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(
                    Gateway(settings),
                    worker_metrics=[f"http://127.0.0.1:{env['FERRYMAN_METRICS_PORT']}/metrics"],
                ),
                host="127.0.0.1",
                port=port,
                log_level="warning",
            )
        )
        stop = asyncio.Event()
        watcher = asyncio.create_task(_watch(worker, Path.cwd(), stop)) if reload else None
        _say(f"console on http://127.0.0.1:{port}/  (REST API: /v1/runs, metrics: /metrics)")
        _say(
            f"send an event:  ferryman send <event-name> --data '{{}}'   "
            f"or POST http://127.0.0.1:{port}/e/dev"
        )
        _say("PostgreSQL " + pg.url + "   NATS " + nats_server.url)
        # uvicorn re-raises SIGTERM after shutting down; with the default handler that would
        # kill us before PostgreSQL and NATS are stopped below.
        signal.signal(signal.SIGTERM, lambda *_: None)
        try:
            await server.serve()
        finally:
            stop.set()
            if watcher:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            worker.stop()
    finally:
        _say("stopping NATS and PostgreSQL ...")
        nats_server.stop()
        pg.stop()
    return 0
