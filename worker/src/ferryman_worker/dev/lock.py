"""One ``ferryman dev`` per data folder.

A second copy started by mistake in the same folder would fight the first over its
PostgreSQL and NATS. The first holds an exclusive ``flock`` on ``<data>/dev.lock`` (the
kernel releases it when the process dies, even by ``kill -9``, so a crash never leaves a
stale lock) and writes its pid and port into the file, for the second to name them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class DataFolderBusy(RuntimeError):
    """Another ``ferryman dev`` holds the data folder; the message names it."""


class DevLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "dev.lock"
        self.fd: int | None = None

    def acquire(self, port: int) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").split()
            os.close(fd)
            pid, their_port = [*holder, "?", "?"][:2]
            raise DataFolderBusy(
                f"another `ferryman dev` (pid {pid}, gateway on port {their_port}) is already "
                f"using {self.path.parent}/; stop it first, or give this one its own "
                f"folder with --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {port}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = None
