"""``ferryman dev``: everything on one machine, with nothing installed but this package.

Starts PostgreSQL and NATS from wheels with their data under ``.ferryman/`` (so a restart
resumes sleeping runs), applies migrations, serves the gateway on :8288 and runs a worker
for the module in a child process that is restarted when a ``.py`` file changes.

It heals: a child that dies (worker, NATS, PostgreSQL) is restarted with backoff
(``supervising.py``); ``/ready`` is true only while the worker is up and ready; a second
``ferryman dev`` on the same folder is refused (``devlock.py``); and every child dies with
this process, even on ``kill -9`` (``embedded.die_with_parent``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import uvicorn

from ferryman_worker.common.settings import load_settings
from ferryman_worker.dev.embedded import NatsServer, PostgresServer, die_with_parent, free_port
from ferryman_worker.dev.lock import DevLock
from ferryman_worker.dev.supervising import Supervisor
from ferryman_worker.gateway import Gateway, create_app
from ferryman_worker.storage.migrating import migrate


class DevError(RuntimeError):
    """``ferryman dev`` cannot start; the message says why and what to do."""


def _say(text: str) -> None:
    print(f"ferryman dev | {text}", flush=True)


class WorkerProcess:
    """``ferryman worker`` as a child; ready once it has written its pid to ``ready_file``."""

    def __init__(self, module: str, env: dict[str, str], ready_file: Path) -> None:
        self.module = module
        self.ready_file = ready_file
        self.env = {**env, "FERRYMAN_READY_FILE": str(ready_file)}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.ready_file.unlink(missing_ok=True)
        parent = os.getpid()
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
            preexec_fn=lambda: die_with_parent(signal.SIGKILL, parent),  # noqa: PLW1509
        )

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exit_code(self) -> int | None:
        return self.proc.poll() if self.proc else None

    @property
    def ready(self) -> bool:
        if not self.alive or self.proc is None:
            return False
        try:
            return self.ready_file.read_text().strip() == str(self.proc.pid)
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _check_port(port: int) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise DevError(f"cannot listen on port {port}: {exc.strerror}") from None
            raise DevError(
                f"port {port} is already in use by another program; "
                f"pick a free one with --port (e.g. --port {port + 1})"
            ) from None


async def _watch(
    worker: WorkerProcess, supervisor: Supervisor, root: Path, stop: asyncio.Event
) -> None:
    from watchfiles import PythonFilter, awatch

    async for changes in awatch(root, watch_filter=PythonFilter(), stop_event=stop):
        names = ", ".join(sorted({Path(p).name for _, p in changes}))
        _say(f"{names} changed: restarting the worker")
        supervisor.pause("worker")
        try:
            await asyncio.to_thread(worker.stop)
            worker.start()  # on the main thread: see supervising.py
        finally:
            supervisor.pause("worker", False)


async def run_dev(module: str, port: int, data_dir: Path, reload: bool) -> int:
    data_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, at start-up
    lock = DevLock(data_dir)
    lock.acquire(port)  # before touching anything in the folder
    try:
        _check_port(port)
        return await _serve(module, port, data_dir, reload)
    finally:
        lock.release()


async def _serve(module: str, port: int, data_dir: Path, reload: bool) -> int:
    _say(f"data in {data_dir}/ (delete it to start afresh)")
    pg = PostgresServer(data_dir / "postgres")
    nats_server = NatsServer(data_dir / "nats")
    _say("starting PostgreSQL ...")
    pg.start()
    try:
        _say("starting NATS JetStream ...")
        nats_server.start()
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
        settings = load_settings(
            database_url=pg.url,
            nats_url=nats_server.url,
            port=port,
            # Open on loopback by default; FERRYMAN_AUTH=true tries the real thing locally.
            auth=None if "FERRYMAN_AUTH" in os.environ else False,
        )
        worker = WorkerProcess(module, env, data_dir / "worker.ready")
        worker.start()
        gateway = Gateway(settings)
        gateway.extra_readiness = lambda: None if worker.ready else "worker: not ready yet"
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(
                    gateway,
                    worker_metrics=[f"http://127.0.0.1:{env['FERRYMAN_METRICS_PORT']}/metrics"],
                ),
                host="127.0.0.1",
                port=port,
                log_level="warning",
            )
        )
        supervisor = Supervisor(_say)
        supervisor.watch("PostgreSQL", pg)
        supervisor.watch("NATS", nats_server)
        supervisor.watch("worker", worker)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(supervisor.run(stop))]
        if reload:
            tasks.append(asyncio.create_task(_watch(worker, supervisor, Path.cwd(), stop)))
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
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            worker.stop()
            if not server.started:
                raise DevError(
                    f"the gateway could not listen on port {port}; "
                    f"pick a free one with --port (e.g. --port {port + 1})"
                )
    finally:
        _say("stopping NATS and PostgreSQL ...")
        nats_server.stop()
        pg.stop()
    return 0
