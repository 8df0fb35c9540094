"""Ferryman's side of each scenario: a real in-process Worker with default settings.

Events go in through :class:`ferryman_worker.storage.events.EventBus` (the path the gateway and
``step.send_event`` use) and, for scenario (c), also through a real gateway process
(``POST /e/{key}``). Observation queries use their own connection, not the worker's pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

import ferryman
from bench import floor
from bench.common import (
    MB,
    CpuMeter,
    Result,
    RssSampler,
    ScenarioTimeout,
    debounce_figures,
    flow_violations,
    keyed_figures,
    settle_memory,
    summary,
    throttle_figures,
)
from ferryman_worker.common.settings import load_settings
from ferryman_worker.dev.embedded import free_port
from ferryman_worker.worker import Worker

APP = "bench"
REPO = str(Path(__file__).resolve().parent.parent)


def noop() -> None:
    return None


class Side:
    def __init__(
        self, db_url: str, nats_url: str, params: dict[str, Any], scenario: str = ""
    ) -> None:
        self.db_url = db_url
        self.nats_url = nats_url
        self.params = params
        self.app = ferryman.Ferryman(app_id=APP)
        self.stamps: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Future[float]] = {}
        # (f): what each step body saw — (function, run id, key, seq, start, end)
        self.flow_log: list[tuple[str, str, Any, int, float, float]] = []
        self._define()
        if scenario == "f":  # only (f)'s worker hosts functions with flow control
            self._define_flow()

    # -- functions ------------------------------------------------------------------------

    def _define(self) -> None:
        app = self.app
        stamps, waiters = self.stamps, self.waiters

        @app.function(id="seq", trigger=ferryman.on_event("bench/seq"))
        async def seq(ctx: ferryman.Context) -> int:
            n = int(ctx.event.data["steps"])
            for i in range(n):
                await ctx.step.run(f"s{i}", noop)
            return n

        def first_stamp(key: str) -> None:
            now = time.perf_counter()
            stamps.setdefault(key, now)
            fut = waiters.get(key)
            if fut is not None and not fut.done():
                fut.set_result(now)

        @app.function(id="first", trigger=ferryman.on_event("bench/first"))
        async def first(ctx: ferryman.Context) -> None:
            await ctx.step.run("first", first_stamp, ctx.event.data["k"])

        def resumed(run_id: str) -> None:
            stamps.setdefault(run_id, time.time())

        @app.function(id="waiter", trigger=ferryman.on_event("bench/wait-start"))
        async def waiter(ctx: ferryman.Context) -> None:
            await ctx.step.wait_for_event("w", event="bench/match", match="data.k", timeout="1h")
            first_stamp(ctx.event.data["k"])  # the first code after the wait

        @app.function(id="sleeper", trigger=ferryman.on_event("bench/sleeper"))
        async def sleeper(ctx: ferryman.Context) -> None:
            await ctx.step.sleep("nap", f"{ctx.event.data['secs']}s")
            await ctx.step.run("after", resumed, ctx.run_id)

        @app.function(id="soak", trigger=ferryman.on_event("bench/soak"))
        async def soak(ctx: ferryman.Context) -> None:
            for i in range(5):
                if i == 2:
                    await ctx.step.sleep("nap", f"{ctx.event.data['sleep']}s")
                await ctx.step.run(f"s{i}", noop)

    def _define_flow(self) -> None:
        app, p, log = self.app, self.params, self.flow_log
        step_s = float(p["step_ms"]) / 1000

        def one_step(name: str) -> Any:
            async def fn(ctx: ferryman.Context) -> None:
                data = ctx.event.data

                async def body() -> None:
                    start = time.time()
                    await asyncio.sleep(step_s)
                    log.append((name, ctx.run_id, data["k"], data["i"], start, time.time()))

                await ctx.step.run("work", body)

            return fn

        app.function(
            id="keyed",
            trigger=ferryman.on_event("bench/keyed"),
            concurrency=[ferryman.Concurrency(limit=int(p["limit"]), key="event.data.k")],
        )(one_step("keyed"))
        app.function(id="unlimited", trigger=ferryman.on_event("bench/unlimited"))(
            one_step("unlimited")
        )
        app.function(
            id="throttled",
            trigger=ferryman.on_event("bench/throttled"),
            throttle=ferryman.Throttle(limit=int(p["rate"]), period="1s"),
        )(one_step("throttled"))
        app.function(id="debounced", trigger=ferryman.on_event("bench/debounced"),
                     debounce=ferryman.Debounce(period=timedelta(seconds=float(p["debounce_s"])),
                                                key="event.data.k"))(
            one_step("debounced"))  # fmt: skip

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self.settings = load_settings(database_url=self.db_url, nats_url=self.nats_url)
        self.worker = Worker([self.app], self.settings)
        await self.worker.start()
        self.bus = self.worker.bus
        self.obs = await psycopg.AsyncConnection.connect(self.db_url, autocommit=True)

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.obs.close()
        with contextlib.suppress(Exception):
            await self.worker.stop(grace=5)

    def settings_used(self) -> dict[str, Any]:
        s = self.settings.model_dump()
        for k in ("database_url", "nats_url", "event_key", "worker_id"):
            s.pop(k, None)
        s["mode"] = "in-process Worker (ferryman_worker.worker.Worker), default Settings"
        s["pool"] = "psycopg AsyncConnectionPool min 4, max max(8, min(50, concurrency))"
        return s

    def fn(self, short: str) -> str:
        """The stored function id of the function declared with ``id=short``."""
        [fid] = [f for f in self.app.functions if f.endswith(f"-{short}")]
        return fid

    async def send(self, name: str, datas: list[dict[str, Any]], batch: int = 500) -> None:
        for i in range(0, len(datas), batch):
            await self.bus.send([ferryman.Event(name=name, data=d) for d in datas[i : i + batch]])

    async def counts(self, function_id: str) -> tuple[int, int]:
        cur = await self.obs.execute(
            "SELECT count(*) FILTER (WHERE status = 'COMPLETED'), "
            "count(*) FILTER (WHERE status IN ('FAILED','CANCELLED')) "
            "FROM runs WHERE function_id = %s",
            (function_id,),
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    async def wait_done(
        self, function_id: str, total: int, timeout: float, what: str, poll: float = 0.05
    ) -> None:
        deadline = time.monotonic() + timeout
        while True:
            ok, bad = await self.counts(function_id)
            if bad:
                raise RuntimeError(f"{bad} {what} runs failed")
            if ok >= total:
                return
            if time.monotonic() > deadline:
                raise ScenarioTimeout(
                    f"Ferryman did not finish: {ok}/{total} {what} runs completed after "
                    f"{timeout:.0f} s"
                )
            await asyncio.sleep(poll)

    # -- scenarios --------------------------------------------------------------------------

    async def scenario_a(self, result: Result, timeout: float) -> None:
        steps = int(self.params["steps"])
        repeats = int(self.params.get("repeats", 3))
        fid = self.fn("seq")
        # warm-up: two runs of 100 steps
        await self.send("bench/seq", [{"steps": min(100, steps)}] * 2)
        await self.wait_done(fid, 2, timeout, "warm-up")
        done = 2
        per_step, walls = [], []
        deadline = time.monotonic() + timeout
        cpu = CpuMeter().start()
        for _ in range(repeats):
            t0 = time.time()
            await self.send("bench/seq", [{"steps": steps}])
            done += 1
            await self.wait_done(
                fid, done, max(1.0, deadline - time.monotonic()), "seq", poll=0.005
            )
            t_seen = time.time()
            cur = await self.obs.execute(
                "SELECT extract(epoch FROM started_at), extract(epoch FROM ended_at) "
                "FROM runs WHERE function_id = %s ORDER BY created_at DESC LIMIT 1",
                (fid,),
            )
            row = await cur.fetchone()
            assert row is not None
            started, ended = float(row[0]), float(row[1])
            per_step.append((ended - started) * 1000 / steps)
            walls.append((t_seen - t0) * 1000 / steps)
        per_step_sorted = sorted(per_step)
        floor_ms = await floor.single_commit_ms(self.db_url)
        result.metrics = {
            "cpu": cpu.stop(),
            "ms_per_step": per_step_sorted[len(per_step_sorted) // 2],
            "floor_insert_commit_ms": floor_ms,
            "times_floor": per_step_sorted[len(per_step_sorted) // 2] / floor_ms,
            "ms_per_step_all": per_step,
            "ms_per_step_wall_from_send": sorted(walls)[len(walls) // 2],
            "how": "runs.started_at (lease taken) to runs.ended_at (COMPLETED committed), "
            f"divided by {steps}; median of {repeats} runs",
        }

    async def scenario_b(self, result: Result, timeout: float) -> None:
        runs, steps = int(self.params["runs"]), int(self.params["steps"])
        fid = self.fn("seq")
        warm = max(20, runs // 10)
        await self.send("bench/seq", [{"steps": steps}] * warm)
        await self.wait_done(fid, warm, timeout, "warm-up")
        await asyncio.sleep(0.5)
        cpu = CpuMeter().start()
        t0 = time.time()
        await self.send("bench/seq", [{"steps": steps}] * runs, batch=runs)
        t_sent = time.time()
        await self.wait_done(fid, warm + runs, timeout, "10-step", poll=0.02)
        cpu_b = cpu.stop()
        cur = await self.obs.execute(
            "SELECT extract(epoch FROM max(ended_at)), "
            "percentile_cont(0.5) WITHIN GROUP "
            "(ORDER BY extract(epoch FROM ended_at - created_at)) "
            "FROM runs WHERE function_id = %s AND created_at >= to_timestamp(%s)",
            (fid, t0),
        )
        row = await cur.fetchone()
        assert row is not None
        elapsed = float(row[0]) - t0
        floor_rows = await floor.group_commit_rows_per_s(self.db_url, runs * steps)
        result.metrics = {
            "cpu": cpu_b,
            "steps_per_second": runs * steps / elapsed,
            "floor_group_commit_rows_per_s": floor_rows,
            "share_of_floor": runs * steps / elapsed / floor_rows,
            "runs_per_second": runs / elapsed,
            "elapsed_s": elapsed,
            "send_s": t_sent - t0,
            "run_p50_created_to_ended_s": float(row[1]),
            "how": f"{runs} events sent with EventBus.send in one batch; from just before the "
            "send to the last run's ended_at",
        }

    async def scenario_c(self, result: Result, timeout: float) -> None:
        runs = int(self.params["runs"])
        deadline = time.monotonic() + timeout
        cpu = CpuMeter().start()
        direct = await self._latencies(runs, self._send_direct, deadline)
        metrics: dict[str, Any] = {"direct_ms": summary(direct)}
        if self.params.get("gateway", True):
            gw = await self._start_gateway()
            try:
                async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:

                    async def post(key: str) -> None:
                        r = await client.post(
                            "/e/bench", json={"name": "bench/first", "id": key, "data": {"k": key}}
                        )
                        r.raise_for_status()

                    metrics["gateway_ms"] = summary(await self._latencies(runs, post, deadline))
            finally:
                gw.stop()
        metrics["cpu"] = cpu.stop()
        metrics["how"] = (
            "direct: perf_counter just before EventBus.send to the first step's "
            "body; gateway: just before the HTTP POST /e/{key} (keep-alive "
            "client, gateway in its own process) to the first step's body"
        )
        result.metrics = metrics

    async def _send_direct(self, key: str) -> None:
        await self.bus.send([ferryman.Event(name="bench/first", id=key, data={"k": key})])

    async def _latencies(self, runs: int, send: Any, deadline: float) -> list[float]:
        async def one() -> float:
            key = uuid.uuid4().hex
            fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
            self.waiters[key] = fut
            t0 = time.perf_counter()
            await send(key)
            left = deadline - time.monotonic()
            if left <= 0:
                raise ScenarioTimeout("Ferryman latency scenario ran out of time")
            try:
                t1 = await asyncio.wait_for(fut, min(left, 30))
            except TimeoutError:
                raise ScenarioTimeout(
                    f"Ferryman: no first step within {min(left, 30):.0f} s of an event"
                ) from None
            self.waiters.pop(key, None)
            return (t1 - t0) * 1000

        for _ in range(min(30, runs)):  # warm-up
            await one()
        return [await one() for _ in range(runs)]

    async def _start_gateway(self) -> Gateway:
        gw = Gateway(self.db_url, self.nats_url)
        await gw.start()
        return gw

    async def scenario_f(self, result: Result, timeout: float) -> None:
        """Flow control: keyed concurrency (and the same load without it), a throttle, a
        debounce — each judged from what the step bodies recorded."""
        p = self.params
        deadline = time.monotonic() + timeout
        cpu = CpuMeter().start()
        metrics: dict[str, Any] = {}
        metrics["unlimited"] = await self._f_many("unlimited", deadline)
        metrics["keyed"] = await self._f_many("keyed", deadline)
        metrics["throttle"] = await self._f_throttle(deadline)
        metrics["debounce"] = await self._f_debounce(deadline)
        metrics["cpu"] = cpu.stop()
        unlimited = metrics["unlimited"]["steps_per_second"]
        metrics["keyed_share_of_unlimited"] = metrics["keyed"]["steps_per_second"] / unlimited
        metrics["how"] = (
            f"{p['runs']:,} events (EventBus.send, batches of 1,000) for runs of one "
            f"{p['step_ms']} ms step (asyncio.sleep), keys round-robin over {p['keys']}: "
            "once without flow control, once with Concurrency(limit="
            f"{p['limit']}, key='event.data.k'); steps/s from just before the first send to "
            "the last runs.ended_at; peak per key and completion per key from the step "
            f"bodies' own time.time() stamps. Throttle(limit={p['rate']}, period='1s'): "
            f"{int(p['rate'] * p['throttle_s']):,} events at once; rate = 1 / the "
            "least-squares slope of the k-th step-body start against k. "
            f"Debounce(period='{p['debounce_s']}s', key="
            f"'event.data.k'): {p['events']:,} events over {p['debounce_keys']:,} keys, "
            "round-robin (one EventBus.send per round, seq = round); runs counted in "
            "PostgreSQL once every event is decided (a run created or an event folded into "
            "one, skipped_events) and every run has ended"
        )
        result.metrics = metrics
        result.violations = flow_violations(metrics, p)

    def _f_log(self, name: str, since: float) -> list[tuple[str, str, Any, int, float, float]]:
        return [r for r in self.flow_log if r[0] == name and r[4] >= since]

    async def _f_many(self, name: str, deadline: float) -> dict[str, Any]:
        p = self.params
        runs, keys, limit = int(p["runs"]), int(p["keys"]), int(p["limit"])
        fid = self.fn(name)
        warm = 2 * keys
        await self.send(f"bench/{name}", [{"k": f"k{i % keys}", "i": -1} for i in range(warm)])
        await self.wait_done(fid, warm, deadline - time.monotonic(), f"{name} warm-up")
        await asyncio.sleep(0.5)
        cpu = CpuMeter().start()
        t0 = time.time()
        datas = [{"k": f"k{i % keys}", "i": i} for i in range(runs)]
        await self.send(f"bench/{name}", datas, batch=1000)
        t_sent = time.time()
        await self.wait_done(fid, warm + runs, deadline - time.monotonic(), name, poll=0.05)
        used = cpu.stop()
        cur = await self.obs.execute(
            "SELECT extract(epoch FROM max(ended_at)), extract(epoch FROM max(created_at)) "
            "FROM runs WHERE function_id = %s AND created_at >= to_timestamp(%s)",
            (fid, t0),
        )
        row = await cur.fetchone()
        assert row is not None
        elapsed = float(row[0]) - t0
        spans = [(r[2], r[4], r[5]) for r in self._f_log(name, t0)]
        return {
            "steps_per_second": runs / elapsed,
            "elapsed_s": elapsed,
            "send_s": t_sent - t0,
            "last_run_created_after_s": float(row[1]) - t0,
            "cpu": used,
            **keyed_figures(spans, t0, runs, limit),
        }

    async def _f_throttle(self, deadline: float) -> dict[str, Any]:
        p = self.params
        n = int(float(p["rate"]) * float(p["throttle_s"]))
        fid = self.fn("throttled")
        await self.send("bench/throttled", [{"k": "w", "i": -1}] * 10)
        await self.wait_done(fid, 10, deadline - time.monotonic(), "throttle warm-up")
        await asyncio.sleep(0.5)
        t0 = time.time()
        await self.send("bench/throttled", [{"k": "t", "i": i} for i in range(n)], batch=1000)
        t_sent = time.time()
        await self.wait_done(fid, 10 + n, deadline - time.monotonic(), "throttled", poll=0.05)
        starts = [r[4] for r in self._f_log("throttled", t0)]
        cur = await self.obs.execute(
            "SELECT extract(epoch FROM max(created_at) - min(created_at)) FROM runs "
            "WHERE function_id = %s AND created_at >= to_timestamp(%s)",
            (fid, t0),
        )
        row = await cur.fetchone()
        arrived = float(row[0]) if row and row[0] is not None else None
        return {
            "target_rate": float(p["rate"]),
            "send_s": t_sent - t0,
            # each run's start time is reserved when its event is decided: if events are
            # decided slower than the rate, they start as fast as they are decided
            "events_decided_per_second": (n - 1) / arrived if arrived else None,
            "first_start_after_send_s": min(starts) - t0 if starts else None,
            **throttle_figures(starts),
        }

    async def _f_debounce(self, deadline: float) -> dict[str, Any]:
        p = self.params
        events, keys = int(p["events"]), int(p["debounce_keys"])
        rounds = events // keys
        fid = self.fn("debounced")
        await self.send("bench/debounced", [{"k": f"w{i}", "i": 0} for i in range(10)])
        await self.wait_done(fid, 10, deadline - time.monotonic(), "debounce warm-up")
        t0 = time.time()
        round_s = []
        for r in range(rounds):
            t = time.time()
            await self.bus.send(
                [
                    ferryman.Event(name="bench/debounced", data={"k": f"k{k}", "i": r})
                    for k in range(keys)
                ]
            )
            round_s.append(time.time() - t)
        t_sent = time.time()
        # every event decided (a run created, or folded into one: skipped_events says so),
        # then every run ended: no event is left to start another run
        absorbed_q = (
            "SELECT (SELECT count(*) FROM runs WHERE function_id = %(f)s "
            "AND created_at >= to_timestamp(%(t)s)), (SELECT count(*) FROM skipped_events "
            "WHERE function_id = %(f)s AND rule = 'debounce' AND at >= to_timestamp(%(t)s)), "
            "(SELECT count(*) FROM runs WHERE function_id = %(f)s AND created_at >= "
            "to_timestamp(%(t)s) AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED'))"
        )
        t_absorbed = None
        while True:
            cur = await self.obs.execute(absorbed_q, {"f": fid, "t": t0})
            row = await cur.fetchone()
            assert row is not None
            created, folded, open_runs = (int(x) for x in row)
            if t_absorbed is None and created + folded >= events:
                t_absorbed = time.time()
            if t_absorbed is not None and open_runs == 0:
                break
            if time.monotonic() > deadline:
                raise ScenarioTimeout(
                    f"Ferryman debounce: {created + folded}/{events} events decided, "
                    f"{open_runs} runs not ended"
                )
            await asyncio.sleep(0.1)
        t_done = time.time()
        # When Ferryman decided each event of a key (a run created, or the event folded
        # in: skipped_events.at of the event it replaced): a gap longer than the period
        # means the period really elapsed between two events as Ferryman saw them.
        cur = await self.obs.execute(
            "WITH d AS (SELECT e.data->>'k' AS k, s.at AS t FROM skipped_events s "
            "JOIN events e ON e.id = s.event_id WHERE s.function_id = %(f)s "
            "AND s.at >= to_timestamp(%(t)s) UNION ALL SELECT e.data->>'k', r.created_at "
            "FROM runs r JOIN events e ON e.id = r.event_id WHERE r.function_id = %(f)s "
            "AND r.created_at >= to_timestamp(%(t)s)) SELECT extract(epoch FROM max(gap)) "
            "FROM (SELECT t - lag(t) OVER (PARTITION BY k ORDER BY t) AS gap FROM d) g",
            {"f": fid, "t": t0},
        )
        row = await cur.fetchone()
        gap = float(row[0]) if row and row[0] is not None else None
        seen = [(r[1], r[2], r[3]) for r in self._f_log("debounced", t0)]
        return {
            "send_s": t_sent - t0,
            "round_send_s_max": max(round_s),
            "events_sent_per_second": events / (t_sent - t0),
            "all_decided_after_s": t_absorbed - t0,
            "max_decision_gap_per_key_s": gap,
            "events_decided_per_second": events / (t_absorbed - t0),
            "all_done_after_s": t_done - t0,
            **debounce_figures(seen, keys, rounds - 1, created),
        }

    async def scenario_g(self, result: Result, timeout: float) -> None:
        """Ingest: single-event POSTs from 64 keep-alive clients in another process, against
        a no-op route on the same HTTP stack (the ceiling), then against the gateway; then
        batches of 100 events per POST. Every 200 must be stored and published."""
        clients, secs = int(self.params["clients"]), float(self.params["secs"])
        processes = int(self.params.get("processes", 1))
        noop = NoopServer(processes)
        await noop.start()
        try:
            ceiling = await run_load(f"{noop.url}/e/bench", clients, secs, 1)
        finally:
            noop.stop()
        async with self.obs.cursor() as cur:
            await cur.execute("SELECT count(*) FROM events WHERE name = 'bench/ingest'")
            before = (await cur.fetchone() or (0,))[0]
        gw = Gateway(self.db_url, self.nats_url, processes)
        await gw.start()
        try:
            single = await run_load(f"{gw.url}/e/bench", clients, secs, 1)
            batched = await run_load(f"{gw.url}/e/bench", clients, secs, 100)
        finally:
            gw.stop()
        async with self.obs.cursor() as cur:
            await cur.execute("SELECT count(*) FROM events WHERE name = 'bench/ingest'")
            stored = (await cur.fetchone() or (0,))[0] - before
        info = await self.worker.js.stream_info("FERRYMAN_EVENTS")
        accepted = int(single["events"]) + int(batched["events"])
        result.metrics = {
            "ceiling": ceiling,
            "single": single,
            "batched": batched,
            "share_of_ceiling": float(single["requests_per_s"]) / float(ceiling["requests_per_s"]),
            "accepted_events": accepted,
            "stored_events": stored,
            "stream_messages": info.state.messages,
            "processes": processes,
            "how": f"{clients} keep-alive aiohttp clients in their own process, {secs:g} s "
            "each: POST /e/bench to a no-op Starlette route on uvicorn (the ceiling), then to "
            "`ferryman gateway` (same stack, same processes), one event per request, then 100",
        }
        if stored < accepted:
            raise RuntimeError(f"{accepted} events answered 200 but only {stored} stored")

    async def scenario_h(self, result: Result, timeout: float) -> None:
        """The soak: paced POSTs through the gateway for minutes; see ``bench/soak.py``."""
        from bench import soak

        gw = Gateway(self.db_url, self.nats_url)
        await gw.start()
        try:
            await soak.run(self, result, timeout, gw)
        finally:
            gw.stop()

    async def scenario_i(self, result: Result, timeout: float) -> None:
        """Scale-out over 1, 2, 4 worker processes; see ``bench/scaleout.py``."""
        from bench import scaleout

        await scaleout.run(self, result, timeout)

    async def scenario_d(self, result: Result, timeout: float) -> None:
        runs, secs = int(self.params["runs"]), float(self.params["secs"])
        fid = self.fn("sleeper")
        warm = min(200, runs)
        await self.send("bench/sleeper", [{"secs": 1}] * warm)
        await self.wait_done(fid, warm, timeout, "warm-up")
        self.stamps.clear()
        baseline = settle_memory()
        sampler = RssSampler().start()
        cpu = CpuMeter().start()
        t0 = time.time()
        try:
            await self.send("bench/sleeper", [{"secs": secs}] * runs, batch=500)
            t_sent = time.time()
            # all asleep: every run has its sleep step recorded
            deadline = time.monotonic() + timeout
            while True:
                cur = await self.obs.execute(
                    "SELECT count(*) FROM steps s JOIN runs r ON r.id = s.run_id "
                    "WHERE r.function_id = %s AND s.step_id = 'nap' AND r.created_at >= "
                    "to_timestamp(%s)",
                    (fid, t0),
                )
                row = await cur.fetchone()
                asleep = int(row[0]) if row else 0
                if asleep >= runs or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            t_asleep = time.time()
            await self.wait_done(
                fid, warm + runs, max(1.0, deadline - time.monotonic()), "sleeping", poll=0.1
            )
            t_end = time.time()
            cpu_d = cpu.stop()
        finally:
            sampler.stop()
        cur = await self.obs.execute(
            "SELECT s.run_id, extract(epoch FROM s.wake_at) FROM steps s JOIN runs r "
            "ON r.id = s.run_id WHERE r.function_id = %s AND s.step_id = 'nap' "
            "AND r.created_at >= to_timestamp(%s)",
            (fid, t0),
        )
        wakes = {r[0]: float(r[1]) for r in await cur.fetchall()}
        late = [self.stamps[k] - w for k, w in wakes.items() if k in self.stamps]
        fired = await self.fired_times(fid, len(wakes) + warm)
        fire_late = [fired[k] - w for k, w in wakes.items() if k in fired]
        pickup = [self.stamps[k] - fired[k] for k in wakes if k in fired and k in self.stamps]
        first_wake = min(wakes.values())
        result.metrics = {
            "cpu": cpu_d,
            "rss_growth_mb": (sampler.peak(t0) - baseline) / MB,
            "rss_growth_while_asleep_mb": (sampler.peak(t_sent, first_wake) - baseline) / MB
            if first_wake > t_sent
            else None,
            "rss_baseline_mb": baseline / MB,
            "rss_peak_mb": sampler.peak(t0) / MB,
            "rss_end_mb": sampler.samples[-1][1] / MB,
            "late_s": summary(late),
            "nats_fired_late_s": summary(fire_late),
            "fired_to_resumed_s": summary(pickup),
            "send_s": t_sent - t0,
            "all_asleep_after_s": t_asleep - t0,
            "all_done_after_s": t_end - t0,
            "how": "RSS of the worker process (psutil, sampled every 100 ms) peak from the "
            "first send to the last completion minus the settled baseline after "
            "warm-up; lateness = time the step after the sleep started minus the "
            "sleep step's wake_at",
        }

    async def fired_times(self, fid: str, most: int) -> dict[str, float]:
        """Diagnostic: when JetStream stored each timer firing (the schedule's output), to
        split lateness into "the schedule fired late" and "the worker picked it up late"."""
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        from ferryman_jetstream.subjects import TIMERS_STREAM, timer_fired_subject

        fired: dict[str, float] = {}
        with contextlib.suppress(Exception):
            sub = await self.worker.js.pull_subscribe(
                timer_fired_subject(fid),
                stream=TIMERS_STREAM,
                config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE),
            )
            while len(fired) < most:
                try:
                    msgs = await sub.fetch(1000, timeout=1)
                except Exception:
                    break
                for msg in msgs:
                    run_id = json.loads(msg.data)["run_id"]
                    fired.setdefault(run_id, msg.metadata.timestamp.timestamp())
            await sub.unsubscribe()
        return fired

    async def pending_waits(self, fid: str) -> int:
        cur = await self.obs.execute(
            "SELECT count(*) FROM waits WHERE function_id = %s AND resolved_at IS NULL", (fid,)
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def matcher_backlog(self) -> dict[str, float]:
        from ferryman_jetstream import subjects as S

        info = await self.worker.js.consumer_info(S.EVENTS_STREAM, S.MATCHER_CONSUMER)
        return {
            "t": time.monotonic(),
            "pending": info.num_pending or 0,
            "ack_pending": info.num_ack_pending or 0,
            "backlog": (info.num_pending or 0) + (info.num_ack_pending or 0),
            "acked_seq": info.ack_floor.stream_seq if info.ack_floor else 0,
        }

    async def explain_candidates(self) -> dict[str, Any]:
        """Diagnostic: EXPLAIN ANALYZE the matcher's per-batch query (read-only) for a batch
        of 64 events nobody waits for, by name and by key, against the pending waits."""
        from datetime import UTC, datetime

        from ferryman_worker.execution.matching import _CANDIDATES

        out: dict[str, Any] = {}
        now = datetime.now(UTC)
        for kind, name in (("other_name", "bench/noise"), ("same_name", "bench/match")):
            cur = await self.obs.execute(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + _CANDIDATES,
                # the probes the matcher makes: one per event and match path of its name
                ([name] * 64, ["k"] * 64, [json.dumps("nobody")] * 64, [now] * 64, list(range(64))),
            )
            row = await cur.fetchone()
            plan = row[0][0] if row else {}
            removed = 0

            def walk(node: dict[str, Any]) -> None:
                nonlocal removed
                removed += int(node.get("Rows Removed by Join Filter", 0))
                for child in node.get("Plans", []):
                    walk(child)

            walk(plan.get("Plan", {}))
            out[kind] = {
                "ms": plan.get("Execution Time"),
                "join_rows_filtered": removed,
                "plan": plan.get("Plan", {}).get("Plans", [{}])[0].get("Node Type"),
            }
        return out

    async def scenario_e(self, result: Result, timeout: float) -> None:
        p = self.params
        waits, rate, secs = int(p["waits"]), float(p["rate"]), float(p["secs"])
        matches, batch = int(p["matches"]), int(p["batch"])
        warm = min(20, matches)
        fid = self.fn("waiter")
        deadline = time.monotonic() + timeout
        # 1. park waits + warm + matches runs in wait_for_event (each match uses one up, so
        #    at least `waits` stay pending throughout the load)
        total = waits + warm + matches
        keys = [f"w{i}" for i in range(total)]
        t_park = time.monotonic()
        await self.send("bench/wait-start", [{"k": k} for k in keys], batch=500)
        while (n := await self.pending_waits(fid)) < total:
            if time.monotonic() > deadline:
                raise ScenarioTimeout(f"Ferryman: only {n}/{total} runs reached their wait")
            await asyncio.sleep(0.2)
        parked_s = time.monotonic() - t_park
        await asyncio.sleep(1.0)  # let the trigger consumers go idle

        async def one(key: str) -> float:
            fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
            self.waiters[key] = fut
            t0 = time.perf_counter()
            await self.bus.send([ferryman.Event(name="bench/match", data={"k": key})])
            left = max(1.0, deadline - time.monotonic())
            try:
                t1 = await asyncio.wait_for(fut, min(left, 30))
            except TimeoutError:
                return math.inf  # not resumed within 30 s: counts as a miss, and fails p99
            finally:
                self.waiters.pop(key, None)
            return (t1 - t0) * 1000

        for key in keys[:warm]:  # warm-up, no load
            await one(key)
        quiet = [await one(k) for k in keys[warm : warm + min(20, matches)]]
        # 2. the load generator in its own process
        work = Path(os.environ.get("BENCH_TMP", "/tmp"))
        load_path = work / "loadgen-e.json"
        load_path.unlink(missing_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([REPO, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        gen = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.loadgen", "--db-url", self.db_url,
            "--nats-url", self.nats_url, "--rate", str(rate), "--secs", str(secs),
            "--batch", str(batch), "--inflight", str(p.get("inflight", 4)),
            "--noise", str(p.get("noise", "mixed")), "--result", str(load_path),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        assert gen.stdin is not None
        assert gen.stdout is not None
        line = await asyncio.wait_for(gen.stdout.readline(), 60)
        if line.strip() != b"ready":
            raise RuntimeError(f"load generator did not start: {line!r}")
        samples: list[dict[str, float]] = [await self.matcher_backlog()]
        cpu = CpuMeter().start()
        t_load = time.monotonic()
        gen.stdin.write(b"go\n")
        await gen.stdin.drain()

        async def sample() -> None:
            while True:
                await asyncio.sleep(0.5)
                with contextlib.suppress(Exception):
                    samples.append(await self.matcher_backlog())

        sampler = asyncio.create_task(sample())
        # 3. matching events at a steady rate over the load period, each awaited
        loaded_keys = keys[warm + min(20, matches) :][:matches]
        interval = secs / (len(loaded_keys) + 1)
        tasks = []
        for n, key in enumerate(loaded_keys):
            due = t_load + (n + 1) * interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            tasks.append(asyncio.create_task(one(key)))
        loaded = list(await asyncio.gather(*tasks))
        await asyncio.wait_for(gen.wait(), max(10.0, deadline - time.monotonic()))
        t_load_end = time.monotonic()
        cpu_e = cpu.stop()
        # 4. drain: how long until the matcher has everything acked (at most 60 s)
        drain_until = min(deadline, time.monotonic() + 60)
        while samples[-1]["backlog"] > 0 and time.monotonic() < drain_until:  # noqa: ASYNC110
            await asyncio.sleep(0.25)
        drain_s = time.monotonic() - t_load_end
        drained = samples[-1]["backlog"] == 0
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        plans = await self.explain_candidates()
        load = json.loads(load_path.read_text())
        cpu_e["loadgen_cpu_s"] = load["cpu_s"]
        cpu_e["other_processes_cpu_s"] = round(cpu_e["other_processes_cpu_s"] - load["cpu_s"], 3)
        during = [s for s in samples if t_load <= s["t"] <= t_load_end]
        series = [
            [round(s["t"] - t_load, 2), int(s["pending"]), int(s["ack_pending"])] for s in samples
        ]
        backlog = [s["backlog"] for s in during] or [0.0]
        half = [s["backlog"] for s in during if s["t"] >= t_load + secs / 2] or [0.0]
        first, last = samples[0], samples[-1]
        matched_rate = (last["acked_seq"] - first["acked_seq"]) / max(1e-9, last["t"] - first["t"])
        result.metrics = {
            "cpu": cpu_e,
            "unrelated_rate": load["achieved_rate"],
            "unrelated_sent": load["sent"],
            "unrelated_failed": load["failed"],
            "unrelated_per_second": load["per_second"],
            "load": {k: v for k, v in load.items() if k not in ("per_second",)},
            "pending_waits": waits,
            "parked_s": parked_s,
            "backlog_max": max(backlog),
            "backlog_mean": sum(backlog) / len(backlog),
            "backlog_max_second_half": max(half),
            "backlog_at_load_end": during[-1]["backlog"] if during else 0,
            "matcher_drain_after_load_s": drain_s if drained else None,
            "backlog_after_drain_wait": samples[-1]["backlog"],
            "not_resumed_within_30s": sum(1 for v in loaded if v == math.inf),
            "matcher_events_per_second": matched_rate,
            "lag_s_max": max(backlog) / load["achieved_rate"] if load["achieved_rate"] else None,
            "backlog_series_t_pending_ackpending": series,
            "resume_ms": summary(loaded),
            "resume_ms_no_load": summary(quiet),
            "candidates_query_64_events": plans,
            "how": f"{total:,} runs parked in step.wait_for_event(match='data.k') "
            f"(≥ {waits:,} pending throughout); a separate process sends unrelated events "
            f"({p.get('noise', 'mixed')}) with EventBus.send in batches of {batch} at "
            f"{rate:,.0f}/s for {secs:g} s; every 0.5 s the matcher consumer's "
            "num_pending + num_ack_pending (JetStream consumer info) is sampled; "
            f"{len(loaded_keys)} matching events are sent one per {interval * 1000:.0f} ms "
            "(EventBus.send of one event) over the load; resume = perf_counter just before "
            "that send to the first line after wait_for_event in the resumed run",
        }


async def run_load(url: str, clients: int, secs: float, batch: int) -> dict[str, Any]:
    """``bench.ingest load`` in its own process; its figures."""
    out = Path(os.environ.get("BENCH_TMP", "/tmp")) / f"ingest-{uuid.uuid4().hex}.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.ingest", "load", url, "--clients", str(clients),
        "--secs", str(secs), "--batch", str(batch), "--result", str(out),
    )  # fmt: skip
    if await proc.wait() != 0:
        raise RuntimeError(f"the load generator failed against {url}")
    figures: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    return figures


class Gateway:
    """``ferryman gateway`` in its own process, on a free port."""

    def __init__(self, db_url: str, nats_url: str, processes: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FERRYMAN_")}
        # Auth stays on, as in production: the event key is checked on every request.
        env.update(
            FERRYMAN_DATABASE_URL=db_url, FERRYMAN_NATS_URL=nats_url, FERRYMAN_EVENT_KEY="bench"
        )
        self.cmd = [
            sys.executable,
            "-c",
            "import sys; from ferryman_worker.cli import main; sys.exit(main())",
            "gateway",
            "--port",
            str(self.port),
        ]
        if processes > 1:
            self.cmd += ["--processes", str(processes)]
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        log = Path(os.environ.get("BENCH_TMP", "/tmp")) / f"gateway-{self.port}.log"
        self.proc = self._spawn(log)
        async with httpx.AsyncClient(base_url=self.url, timeout=1) as c:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if (await c.get("/ready")).status_code == 200:
                        return
                if self.proc.poll() is not None:
                    break
                await asyncio.sleep(0.1)
        raise RuntimeError(f"gateway did not become ready; see {log}")

    def _spawn(self, log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen(self.cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class NoopServer(Gateway):
    """``bench.ingest noop``: the HTTP stack alone, the ceiling for scenario (g)."""

    def __init__(self, processes: int = 1) -> None:
        super().__init__("", "", processes)
        self.cmd = [sys.executable, "-m", "bench.ingest", "noop", "--port", str(self.port),
                    "--processes", str(processes)]  # fmt: skip
