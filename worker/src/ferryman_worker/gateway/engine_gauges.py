"""Engine-wide gauges, computed by one gateway replica for the whole installation.

Runs by state, JetStream backlog and the age of its oldest message per function and
consumer, and overdue timers are facts about the shared stores, not about one process:
if every replica exported them, dashboards would have to de-duplicate them. So the
gateway replica that holds a PostgreSQL advisory lock refreshes them every few seconds
(a grouped count over a partial index, a few consumer-info calls) and serves them from
a snapshot at scrape time; the others export only ``ferryman_engine_gauges_leader 0``.
A replica that dies releases the lock with its connection, and another takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from psycopg_pool import AsyncConnectionPool

from ferryman_jetstream import subjects as S
from ferryman_worker.common.logs import Outage

log = logging.getLogger("ferryman.gateway")

LOCK_KEY = 0x4645_5252_594D_4E  # "FERRYMN": one leader among gateway replicas
STATES = ("QUEUED", "RUNNING", "SLEEPING", "WAITING")
CONSUMERS = ("trigger", "work", "timers")


@dataclass
class Snapshot:
    runs: dict[tuple[str, str], int] = field(default_factory=dict)
    backlog: dict[tuple[str, str], int] = field(default_factory=dict)
    oldest: dict[tuple[str, str], float] = field(default_factory=dict)
    overdue: dict[str, float] = field(default_factory=dict)
    matcher_backlog: int = 0
    matcher_oldest: float = 0.0


class EngineGauges(Collector):
    """A collector over the latest snapshot; ``run`` keeps it fresh while leader."""

    def __init__(self, database_url: str, interval: float = 5.0) -> None:
        self.database_url = database_url
        self.interval = interval
        self.leader = False
        self.snapshot: Snapshot | None = None
        self.conn: psycopg.AsyncConnection[Any] | None = None
        self.outage = Outage(log, "engine gauges (PostgreSQL or NATS)")
        # Stopping does not rely on cancellation alone: a cancel that lands inside the
        # database driver can be swallowed, and the loop would go on for ever.
        self.stopping = asyncio.Event()

    # -- refreshing ------------------------------------------------------------------

    async def run(self, pool: AsyncConnectionPool, js: JetStreamContext) -> None:
        while not self.stopping.is_set():
            try:
                if await self._lead():
                    self.snapshot = await self._read(pool, js)
                else:
                    self.snapshot = None
                self.outage.ok()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.outage.failed(exc)
                await self._drop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.interval)

    async def _lead(self) -> bool:
        if self.conn is None or self.conn.closed:
            self.leader = False
            self.conn = await psycopg.AsyncConnection.connect(
                self.database_url, autocommit=True, connect_timeout=5
            )
        if not self.leader:
            cur = await self.conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
            row = await cur.fetchone()
            self.leader = bool(row and row[0])
        else:
            await self.conn.execute("SELECT 1")  # still connected, so still holding the lock
        return self.leader

    async def _drop(self) -> None:
        self.leader = False
        self.snapshot = None
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await self.conn.close()
        self.conn = None

    async def close(self) -> None:
        await self._drop()

    async def _read(self, pool: AsyncConnectionPool, js: JetStreamContext) -> Snapshot:
        snap = Snapshot()
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT id FROM functions")
            functions = [r[0] for r in await cur.fetchall()]
            for fn in functions:
                for state in STATES:
                    snap.runs[(fn, state)] = 0
                snap.overdue[fn] = 0.0
            cur = await conn.execute(
                "SELECT function_id, status, count(*) FROM runs "
                "WHERE status IN ('QUEUED','RUNNING','SLEEPING','WAITING') GROUP BY 1, 2"
            )
            for fn, state, count in await cur.fetchall():
                snap.runs[(fn, state)] = int(count)
            cur = await conn.execute(
                "SELECT function_id, extract(epoch FROM now() - min(fire_at))::float8 "
                "FROM timers WHERE fired_at IS NULL AND fire_at < now() GROUP BY 1"
            )
            for fn, seconds in await cur.fetchall():
                snap.overdue[fn] = float(seconds)
        for fn in functions:
            for kind, stream, name in (
                ("trigger", S.EVENTS_STREAM, S.trigger_consumer(fn)),
                ("work", S.WORK_STREAM, S.work_consumer(fn)),
                ("timers", S.TIMERS_STREAM, S.timers_consumer(fn)),
            ):
                count, age = await _consumer_backlog(js, stream, name)
                snap.backlog[(fn, kind)] = count
                snap.oldest[(fn, kind)] = age
        snap.matcher_backlog, snap.matcher_oldest = await _consumer_backlog(
            js, S.EVENTS_STREAM, S.MATCHER_CONSUMER
        )
        return snap

    # -- exporting -------------------------------------------------------------------

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "ferryman_engine_gauges_leader",
            "1 on the gateway replica that computes the engine-wide gauges",
            value=1 if self.snapshot is not None else 0,
        )
        snap = self.snapshot
        if snap is None:
            return
        runs = GaugeMetricFamily(
            "ferryman_runs_by_state",
            "Unfinished runs by state (QUEUED, RUNNING, SLEEPING, WAITING)",
            labels=["function", "state"],
        )
        for (fn, state), count in sorted(snap.runs.items()):
            runs.add_metric([fn, state], count)
        yield runs
        backlog = GaugeMetricFamily(
            "ferryman_backlog_messages",
            "JetStream messages pending or unacknowledged, by function and consumer",
            labels=["function", "consumer"],
        )
        oldest = GaugeMetricFamily(
            "ferryman_backlog_oldest_age_seconds",
            "Age of the oldest pending or unacknowledged message, by function and consumer",
            labels=["function", "consumer"],
        )
        for (fn, kind), count in sorted(snap.backlog.items()):
            backlog.add_metric([fn, kind], count)
            oldest.add_metric([fn, kind], snap.oldest[(fn, kind)])
        yield backlog
        yield oldest
        overdue = GaugeMetricFamily(
            "ferryman_timers_overdue_seconds",
            "How long the most overdue unfired timer (sleep, retry, timeout) is past due",
            labels=["function"],
        )
        for fn, seconds in sorted(snap.overdue.items()):
            overdue.add_metric([fn], seconds)
        yield overdue
        yield GaugeMetricFamily(
            "ferryman_matcher_backlog_messages",
            "Events the matcher has not handled yet",
            value=snap.matcher_backlog,
        )
        yield GaugeMetricFamily(
            "ferryman_matcher_oldest_age_seconds",
            "Age of the oldest event the matcher has not handled yet",
            value=snap.matcher_oldest,
        )


async def _consumer_backlog(js: JetStreamContext, stream: str, name: str) -> tuple[int, float]:
    """(messages pending or unacked, age in seconds of the oldest of them); (0, 0) if none."""
    try:
        info = await js.consumer_info(stream, name)
    except NotFoundError:
        return 0, 0.0
    count = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
    if count == 0:
        return 0, 0.0
    floor = int(info.ack_floor.stream_seq if info.ack_floor else 0) + 1
    config = info.config
    subjects = list(config.filter_subjects or []) or [config.filter_subject or ""]
    oldest: float | None = None
    for subject in subjects:
        try:
            msg = await js.get_msg(stream, seq=floor, subject=subject or None, next=True)
        except NotFoundError:
            continue
        stamp = _epoch(msg.time)
        if stamp is not None and (oldest is None or stamp < oldest):
            oldest = stamp
    return count, max(0.0, time.time() - oldest) if oldest is not None else 0.0


def _epoch(value: object) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str) and value:
        with contextlib.suppress(ValueError):
            # JetStream sends nanoseconds; Python parses microseconds at most.
            head, _, frac = value.rstrip("Z").partition(".")
            return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00").timestamp()
    return None
