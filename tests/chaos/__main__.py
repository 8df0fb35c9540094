"""Chaos: runs of a multi-step function (steps, a sleep, a wait) while a driver kill -9s
random worker processes, and NATS and PostgreSQL once each (restarted on the same data).

    python -m tests.chaos                       # CI: 1,000 runs, 20 worker kills
    python -m tests.chaos --runs 3000 --kills 60   # `make chaos`

It prints the figures and exits non-zero unless: no run is lost (every accepted event's
run COMPLETED), no event started two runs, and no step's side effect ran more than once
more than the kills that could have interrupted it (counted from the ledger).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import nats
import psycopg
from psycopg_pool import AsyncConnectionPool

from examples import services
from ferryman import Event
from ferryman_worker.dev.embedded import NatsServer, PostgresServer, die_with_parent
from ferryman_worker.storage.events import EventBus
from ferryman_worker.storage.migrating import migrate

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.apps.chaos_app"
FUNCTION = "chaos-order"


class Cluster:
    def __init__(self, tmp: Path, workers: int) -> None:
        self.tmp = tmp
        self.pg = PostgresServer(tmp / "pg")
        self.nats = NatsServer(tmp / "nats")
        self.size = workers
        self.procs: list[subprocess.Popen[bytes]] = []
        self.spawned = 0

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "FERRYMAN_DATABASE_URL": self.pg.url, "FERRYMAN_NATS_URL": self.nats.url,
            "FERRYMAN_LEASE_SECONDS": "3", "FERRYMAN_REPAIR_INTERVAL_SECONDS": "2",
            "FERRYMAN_CONCURRENCY": "100",
            "FERRYMAN_EXAMPLES_LEDGER": str(self.tmp / "ledger.jsonl"),
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
        }  # fmt: skip

    def spawn(self) -> None:
        log = (self.tmp / f"worker-{self.spawned}.log").open("wb")
        self.spawned += 1
        parent = os.getpid()
        self.procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "ferryman_worker.cli", "worker", "-m", APP, "--no-migrate"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                preexec_fn=lambda: die_with_parent(signal.SIGKILL, parent),  # noqa: PLW1509
            )
        )  # fmt: skip

    def kill_random_worker(self) -> None:
        alive = [p for p in self.procs if p.poll() is None]
        victim = random.choice(alive)
        victim.kill()
        victim.wait()
        self.procs.remove(victim)
        self.spawn()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.nats.stop()
        self.pg.stop()


async def _quiet(exc: Exception) -> None:
    """NATS being down is the point here; the sends that fail say so."""


def say(text: str) -> None:
    print(f"chaos | {text}", flush=True)


async def send_all(bus: EventBus, events: list[Event]) -> None:
    """Send until accepted: a send that fails (NATS or PostgreSQL down) is retried with the
    same ids, as a client would; the ids dedupe."""
    while True:
        try:
            await bus.send(events)
            return
        except Exception as exc:
            say(f"send failed ({type(exc).__name__}); retrying")
            await asyncio.sleep(0.5)


async def chaos(args: argparse.Namespace) -> int:
    random.seed(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="ferryman-chaos-"))
    cluster = Cluster(tmp, args.workers)
    os.environ[services.LEDGER_ENV] = str(tmp / "ledger.jsonl")
    cluster.pg.start()
    cluster.nats.start()
    await migrate(cluster.pg.url)
    for _ in range(args.workers):
        cluster.spawn()
    pool = AsyncConnectionPool(
        cluster.pg.url, min_size=1, max_size=4, kwargs={"autocommit": True}, open=False
    )
    await pool.open()
    nc = await nats.connect(
        cluster.nats.url, max_reconnect_attempts=-1, reconnect_time_wait=0.5, error_cb=_quiet
    )
    bus = EventBus(pool, nc.jetstream(timeout=5))
    started = time.monotonic()
    try:
        await wait_workers(cluster, args.workers)
        say(f"{args.workers} workers up; {args.runs} runs in {args.waves} waves, "
            f"{args.kills} worker kills, NATS and PostgreSQL killed once each")  # fmt: skip
        orders = [f"o-{n}" for n in range(args.runs)]
        waves = [orders[i :: args.waves] for i in range(args.waves)]
        kills = {"worker": 0, "nats": 0, "postgres": 0}
        nats_at, pg_at = args.kills // 3, 2 * args.kills // 3
        kill_every = args.seconds / max(1, args.kills)
        next_kill = time.monotonic() + kill_every
        wave_every = args.seconds / args.waves
        next_wave = time.monotonic()
        pending_paid: list[tuple[float, list[str]]] = []
        while kills["worker"] < args.kills or waves or pending_paid:
            now = time.monotonic()
            if waves and now >= next_wave:
                wave = waves.pop(0)
                await send_all(bus, [
                    Event(name="chaos.order", data={"orderId": o}, id=f"evt-{o}") for o in wave
                ])  # fmt: skip
                pending_paid.append((now + 1.5, [o for o in wave if int(o[2:]) % 2 == 0]))
                next_wave = now + wave_every
            for due, paid in list(pending_paid):
                if now >= due:
                    pending_paid.remove((due, paid))
                    await send_all(bus, [
                        Event(name="chaos.paid", data={"orderId": o}, id=f"paid-{o}") for o in paid
                    ])  # fmt: skip
            if kills["worker"] < args.kills and now >= next_kill:
                cluster.kill_random_worker()
                kills["worker"] += 1
                next_kill = now + kill_every * random.uniform(0.5, 1.5)
                if kills["worker"] == nats_at:
                    say("kill -9 NATS; restart on the same data in 1 s")
                    cluster.nats.kill()
                    await asyncio.sleep(1)
                    cluster.nats.start()
                    kills["nats"] += 1
                if kills["worker"] == pg_at:
                    say("kill -9 PostgreSQL; restart on the same data in 1 s")
                    cluster.pg.kill()
                    await asyncio.sleep(1)
                    cluster.pg.start()
                    kills["postgres"] += 1
            await asyncio.sleep(0.05)
        say(f"chaos over after {time.monotonic() - started:.0f}s; waiting for every run")
        deadline = time.monotonic() + args.settle
        while time.monotonic() < deadline:
            done = count_done(cluster.pg.url)
            if done >= args.runs:
                break
            await asyncio.sleep(2)
        return report(cluster, args, kills, time.monotonic() - started)
    finally:
        await nc.close()
        await pool.close()
        cluster.stop()


async def wait_workers(cluster: Cluster, n: int) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        up = sum(
            "hosting" in (cluster.tmp / f"worker-{i}.log").read_text(errors="replace")
            for i in range(n)
        )
        if up >= n:
            return
        await asyncio.sleep(0.5)
    raise SystemExit("workers did not start")


def count_done(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM runs WHERE function_id = %s AND status = 'COMPLETED'",
            (FUNCTION,),
        ).fetchone()
    return int(row[0]) if row else 0


def report(cluster: Cluster, args: argparse.Namespace, kills: dict[str, int], took: float) -> int:
    with psycopg.connect(cluster.pg.url, autocommit=True) as conn:
        runs = conn.execute(
            "SELECT event_id, status, id FROM runs WHERE function_id = %s", (FUNCTION,)
        ).fetchall()
    per_event = Counter(r[0] for r in runs)
    completed = {r[0] for r in runs if r[1] == "COMPLETED"}
    statuses = Counter(r[1] for r in runs)
    expected = {f"evt-o-{n}" for n in range(args.runs)}
    lost = sorted(expected - completed)
    duplicates = sorted(e for e, c in per_event.items() if c > 1)
    effects = Counter((r["run"], r["step"]) for r in services.records("effect"))
    total_kills = sum(kills.values())
    extra = {k: c - 1 for k, c in effects.items() if c > 1}
    over = {k: c for k, c in effects.items() if c > 1 + total_kills}
    done_runs = {r[2] for r in runs if r[1] == "COMPLETED"}
    missing_effects = sum(
        1 for run in done_runs for step in ("reserve", "charge", "ship") if not effects[(run, step)]
    )
    lines = [
        f"runs accepted            {args.runs}",
        f"runs completed           {len(completed & expected)}   ({dict(statuses)})",
        f"runs lost                {len(lost)}",
        f"duplicate runs           {len(duplicates)}",
        f"kills                    {kills['worker']} workers, {kills['nats']} NATS, "
        f"{kills['postgres']} PostgreSQL",
        f"step side effects        {sum(effects.values())} for {len(effects)} steps",
        f"steps run again          {len(extra)} ({sum(extra.values())} extra executions, "
        f"most for one step: {max(extra.values(), default=0)})",
        f"steps over the bound     {len(over)} (bound: 1 + {total_kills} kills)",
        f"completed steps missing  {missing_effects}",
        f"took                     {took:.0f}s",
    ]
    print("\n".join("chaos | " + line for line in lines), flush=True)
    ok = not lost and not duplicates and not over and missing_effects == 0
    if lost:
        say(f"lost (first 10): {lost[:10]}")
    say("PASS" if ok else f"FAIL (logs in {cluster.tmp})")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=20, help="worker kill -9s")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--waves", type=int, default=10, help="events are sent in waves")
    parser.add_argument("--seconds", type=float, default=60, help="how long the chaos lasts")
    parser.add_argument("--settle", type=float, default=300, help="then wait this long at most")
    parser.add_argument("--seed", type=int, default=7)
    return asyncio.run(chaos(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
