"""Store outages: a count and one log line per outage, not a traceback per run.

While PostgreSQL or NATS is briefly down every run, pull and commit fails; logging each
with a traceback buries the one line that matters. :func:`report_failure` tells a store
failure (counted in ``ferryman_store_errors_total``, logged once when the outage starts
and once when it ends) from a bug (logged with its traceback).
"""

from __future__ import annotations

import logging
from typing import Any

import nats.errors
import psycopg
from psycopg_pool import PoolTimeout

from ferryman_worker.common import metrics
from ferryman_worker.common.logs import Outage

log = logging.getLogger("ferryman.worker")

CHECKPOINTS_DOWN = Outage(log, "checkpoints (PostgreSQL or NATS)")


def report_failure(exc: BaseException, message: str, *args: Any) -> None:
    """A traceback for a bug; for a store outage a count, and one line per outage."""
    system = store_system(exc)
    if system is None:
        log.error(message, *args, exc_info=exc)
        return
    metrics.STORE_ERRORS.labels(system).inc()
    CHECKPOINTS_DOWN.failed(exc)


def store_system(exc: BaseException) -> str | None:
    """``postgresql`` or ``nats`` when ``exc`` (or what caused it) is a store failure."""
    for err in (exc, exc.__cause__):
        if isinstance(err, psycopg.Error | PoolTimeout):
            return "postgresql"
        if isinstance(err, nats.errors.Error):
            return "nats"
    return None
