"""Log formats: a console format a person can follow, or one JSON object a line.

``FERRYMAN_LOG_FORMAT=console`` (the default) prints what runs do the way
``ferryman dev`` users read it (``run started``, ``step failed (attempt 2/5), retrying in
2 s``, ``sleeping until``, ``run completed in 1.2 s``); ``FERRYMAN_LOG_FORMAT=json`` prints
one object a line with ``run_id``, ``function_id``, ``step_id``, ``attempt`` and ``worker``
as fields, for a log pipeline. Records carry those fields as ``extra``; the lines
themselves come from ``observing.py`` (runs and steps) and the loops that touch the stores.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

FORMATS = ("console", "json")
FIELDS = ("run_id", "function_id", "step_id", "attempt", "worker")


class JsonFormatter(logging.Formatter):
    def __init__(self, worker: str | None) -> None:
        super().__init__()
        self.worker = worker

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        if "worker" not in out and self.worker:
            out["worker"] = self.worker
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class ConsoleFormatter(logging.Formatter):
    """``12:00:01.234  function-id  message``: short, aligned, the run's id in the message."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        stamp += f".{int(record.msecs):03d}"
        level = "" if record.levelno == logging.INFO else f"{record.levelname} "
        where = getattr(record, "function_id", None) or record.name
        line = f"{stamp}  {where:<24} {level}{record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure(
    fmt: str, *, level: int = logging.INFO, worker: str | None = None, stream: TextIO | None = None
) -> None:
    """Install the format on the root logger (replacing handlers a previous call added)."""
    if fmt not in FORMATS:
        raise ValueError(f"FERRYMAN_LOG_FORMAT must be one of {', '.join(FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    if worker is None:  # as the worker names itself in leases (worker.py)
        worker = os.environ.get("FERRYMAN_WORKER_ID") or f"{socket.gethostname()}:{os.getpid()}"
    handler.setFormatter(JsonFormatter(worker) if fmt == "json" else ConsoleFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("nats").setLevel(logging.CRITICAL)


def seconds(value: float) -> str:
    """``0.42 s``, ``1.2 s``, ``12 s``, ``3 min 5 s``: durations as a person says them."""
    if value < 1:
        return f"{value:.2f} s"
    if value < 10:
        return f"{value:.1f} s"
    if value < 120:
        return f"{value:.0f} s"
    minutes, rest = divmod(int(value), 60)
    return f"{minutes} min {rest} s" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"


class Outage:
    """One line when a dependency starts failing, one when it is back — not one per try.

    ``failed`` logs a warning the first time (and counts every failure in
    ``ferryman_store_errors_total`` through ``on_error``); ``ok`` logs the recovery with
    how long it lasted.
    """

    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log = log
        self.what = what
        self.since: float | None = None
        self.failures = 0

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        if self.since is None:
            self.since = time.monotonic()
            self.log.warning(
                "%s unavailable (%s: %s); retrying quietly until it is back",
                self.what,
                type(exc).__name__,
                str(exc) or "no detail",
            )

    def ok(self) -> None:
        if self.since is not None:
            self.log.warning(
                "%s is back after %s (%d failed tries)",
                self.what,
                seconds(time.monotonic() - self.since),
                self.failures,
            )
            self.since = None
            self.failures = 0
