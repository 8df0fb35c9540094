"""Ferryman's side of each scenario: a real in-process Worker with default settings.

Events go in through :class:`ferryman_worker.events.EventBus` (the path the gateway and
``step.send_event`` use) and, for scenario (c), also through a real gateway process
(``POST /e/{key}``). Observation queries use their own connection, not the worker's pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

import ferryman
from bench.common import MB, CpuMeter, Result, RssSampler, ScenarioTimeout, settle_memory, summary
from ferryman_worker.embedded import free_port
from ferryman_worker.settings import load_settings
from ferryman_worker.worker import Worker

APP = "bench"


def noop() -> None:
    return None


class Side:
    def __init__(self, db_url: str, nats_url: str, params: dict[str, Any]) -> None:
        self.db_url = db_url
        self.nats_url = nats_url
        self.params = params
        self.app = ferryman.Ferryman(app_id=APP)
        self.stamps: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self._define()

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

        @app.function(id="sleeper", trigger=ferryman.on_event("bench/sleeper"))
        async def sleeper(ctx: ferryman.Context) -> None:
            await ctx.step.sleep("nap", f"{ctx.event.data['secs']}s")
            await ctx.step.run("after", resumed, ctx.run_id)

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
        result.metrics = {
            "cpu": cpu.stop(),
            "ms_per_step": per_step_sorted[len(per_step_sorted) // 2],
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
        result.metrics = {
            "cpu": cpu_b,
            "steps_per_second": runs * steps / elapsed,
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


class Gateway:
    """``ferryman gateway`` in its own process, on a free port."""

    def __init__(self, db_url: str, nats_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FERRYMAN_")}
        env.update(FERRYMAN_DATABASE_URL=db_url, FERRYMAN_NATS_URL=nats_url)
        self.cmd = [
            sys.executable,
            "-c",
            "import sys; from ferryman_worker.cli import main; sys.exit(main())",
            "gateway",
            "--port",
            str(self.port),
        ]
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
