"""``python -m bench.console``: the console at scale — 1,000,000 runs, 10,000,000 step rows.

Seeds PostgreSQL directly with ``generate_series`` (minutes, not hours: no per-row round
trips, foreign-key triggers off while seeding, the steps' primary key built once after the
load), then measures through a real gateway (uvicorn, real HTTP) what the console asks:

- the runs list, first page and next page, with every filter the console offers (function,
  status, both, time range, event id), target ≤ 100 ms each;
- one run of 1,000 steps: ``GET /v1/runs/{id}``, and its timeline in headless Chromium:
  from the navigation's start to the frame that paints the timeline's last visible row,
  over ``--loads`` page loads (7); target ≤ 1 s for the worst load (the full run exits
  non-zero above it; ``--quick`` reports it only);
- the functions page (``GET /v1/functions``) for information.

``--quick`` seeds 20,000 runs and a 100-step run: a smoke test of the scenario for CI.
The data stays in ``.bench/console/`` between runs (``--reseed`` starts afresh).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.common import summary
from ferryman_worker.dev.embedded import NatsServer, PostgresServer
from ferryman_worker.storage import queries
from ferryman_worker.storage.migrating import migrate

FUNCTIONS = 20
STATUSES = (
    # (status, share in thousandths): most runs finish, a few of each other status
    ("COMPLETED", 900), ("FAILED", 50), ("CANCELLED", 20), ("RUNNING", 10),
    ("SLEEPING", 10), ("WAITING", 7), ("QUEUED", 3),
)  # fmt: skip
TARGET_LIST_MS = 100.0
TARGET_RUN_MS = 1000.0
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def _status_case() -> str:
    """SQL: a status for run number ``i`` with the shares above (deterministic)."""
    parts, upto = [], 0
    for status, share in STATUSES:
        upto += share
        parts.append(f"WHEN mod(i::bigint * 7919, 1000) < {upto} THEN '{status}'")
    return "CASE " + " ".join(parts) + " END"


def seed(url: str, runs: int, steps_per_run: int, big_steps: int) -> dict[str, float]:
    """Fill an empty, migrated database; returns seconds per phase."""
    took: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '512MB'")
        # Seeding only: skip the steps -> runs foreign-key triggers (every row is consistent).
        conn.execute("SET session_replication_role = replica")
        started = time.monotonic()
        conn.execute(
            "INSERT INTO functions (id, app_id, name, config) "
            "SELECT 'bench-fn-' || f, 'bench', 'fn-' || f, jsonb_build_object('id', 'fn-' || f,"
            " 'triggers', jsonb_build_array(jsonb_build_object('event', 'bench.e' || f,"
            " 'if', null)), 'retries', 3) FROM generate_series(0, %s) AS f",
            (FUNCTIONS - 1,),
        )
        # Run i was created i * 2.5 s before now: a million runs span about 29 days.
        conn.execute(
            (
                "INSERT INTO runs (id, function_id, event_id, event_ids, status, attempt,"
                " output, created_at, started_at, ended_at, updated_at) "
                "SELECT 'r' || lpad(i::text, 9, '0'), 'bench-fn-' || mod(i, %(fns)s),"
                " 'e' || lpad(i::text, 9, '0'), ARRAY['e' || lpad(i::text, 9, '0')],"
                f" {_status_case()}, 0, '{{\"ok\": true}}'::jsonb,"
                " now() - i * interval '2.5 seconds',"
                " now() - i * interval '2.5 seconds' + interval '5 ms',"
                " now() - i * interval '2.5 seconds' + interval '900 ms',"
                " now() - i * interval '2.5 seconds' + interval '900 ms' "
                "FROM generate_series(%(runs)s, 1, -1) AS i"
            ).encode(),
            {"fns": FUNCTIONS, "runs": runs},
        )
        took["runs"] = time.monotonic() - started
        started = time.monotonic()
        conn.execute("ALTER TABLE steps DROP CONSTRAINT steps_pkey")
        conn.execute(
            "INSERT INTO steps (run_id, step_id, name, position, op, status, output, attempts,"
            " started_at, ended_at, attempt_started_at) "
            "SELECT r.id, 'step-' || k, 'step-' || k, k, 'run', 'COMPLETED', '1'::jsonb, 1,"
            " r.started_at + k * interval '80 ms', r.started_at + k * interval '80 ms'"
            " + interval '50 ms', r.started_at + k * interval '80 ms' "
            "FROM runs r CROSS JOIN generate_series(0, %s) AS k",
            (steps_per_run - 1,),
        )
        took["steps"] = time.monotonic() - started
        big = seed_big_run(conn, big_steps)
        started = time.monotonic()
        conn.execute("ALTER TABLE steps ADD PRIMARY KEY (run_id, step_id)")
        took["steps_primary_key"] = time.monotonic() - started
        started = time.monotonic()
        conn.execute("VACUUM ANALYZE runs")
        conn.execute("VACUUM ANALYZE steps")
        conn.execute("ANALYZE")
        took["vacuum_analyze"] = time.monotonic() - started
        conn.execute("CREATE TABLE bench_console (big_run text)")
        conn.execute("INSERT INTO bench_console VALUES (%s)", (big,))
    return took


def seed_big_run(conn: psycopg.Connection[Any], steps: int) -> str:
    """One run of ``steps`` steps, every tenth retried twice, its event stored."""
    run_id = "big-run"
    conn.execute(
        "INSERT INTO events (id, name, data, ts) VALUES ('big-event', 'bench.big', "
        '\'{"size": "big"}\', 0)'
    )
    conn.execute(
        "INSERT INTO runs (id, function_id, event_id, event_ids, status, output, created_at,"
        " started_at, ended_at) VALUES (%s, 'bench-fn-0', 'big-event', ARRAY['big-event'],"
        " 'COMPLETED', '{\"ok\": true}', now() - interval '10 minutes',"
        " now() - interval '10 minutes', now() - interval '5 minutes')",
        (run_id,),
    )
    conn.execute(
        "INSERT INTO steps (run_id, step_id, name, position, op, status, output, attempts,"
        " started_at, ended_at, attempt_started_at) "
        "SELECT %s, 'step-' || k, 'step-' || k, k, 'run', 'COMPLETED',"
        " jsonb_build_object('k', k, 'payload', repeat('x', 64)),"
        " CASE WHEN mod(k, 10) = 0 THEN 3 ELSE 1 END,"
        " now() - interval '10 minutes' + k * interval '250 ms',"
        " now() - interval '10 minutes' + k * interval '250 ms' + interval '200 ms',"
        " now() - interval '10 minutes' + k * interval '250 ms' + interval '150 ms' "
        "FROM generate_series(0, %s) AS k",
        (run_id, steps - 1),
    )
    conn.execute(
        "INSERT INTO step_attempts (run_id, step_id, attempt, error, started_at, at, retry_at) "
        "SELECT %s, 'step-' || k, a, jsonb_build_object('name', 'RuntimeError', 'message',"
        " 'attempt ' || a || ' failed', 'stack', 'Traceback ...'),"
        " now() - interval '10 minutes' + k * interval '250 ms' + a * interval '50 ms',"
        " now() - interval '10 minutes' + k * interval '250 ms' + a * interval '50 ms'"
        " + interval '20 ms',"
        " now() - interval '10 minutes' + k * interval '250 ms' + (a + 1) * interval '50 ms' "
        "FROM generate_series(0, %s, 10) AS k CROSS JOIN generate_series(0, 1) AS a",
        (run_id, steps - 1),
    )
    return run_id


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(client: httpx.Client, path: str, repeats: int) -> tuple[dict[str, float], Any]:
    client.get(path).raise_for_status()  # warm: plans and pages cached, as in steady use
    samples, body = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        body = response.json()
    return summary(samples), body


def explain(url: str, params: dict[str, Any]) -> str:
    """The plan's top scan node for the runs list with these filters (index or not)."""
    clause, args = queries.run_filter(
        function_id=params.get("function_id"), status=params.get("status"),
        event_id=params.get("event_id"),
        after=params.get("after_dt"), before=params.get("before_dt"),
    )  # fmt: skip
    sql = (
        f"EXPLAIN (FORMAT JSON) SELECT * FROM runs WHERE {clause} "
        "ORDER BY created_at DESC, id DESC LIMIT 51"
    )
    with psycopg.connect(url) as conn:
        plan = conn.execute(sql.encode(), args).fetchone()[0][0]["Plan"]  # type: ignore[index]
    while plan.get("Plans") and plan["Node Type"] in ("Limit", "Sort", "Incremental Sort"):
        plan = plan["Plans"][0]
    return f"{plan['Node Type']} {plan.get('Index Name', plan.get('Relation Name', ''))}".strip()


def filters(runs: int) -> dict[str, dict[str, Any]]:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    week_ago, six_days = now - timedelta(days=7), now - timedelta(days=6)
    window = {"after": week_ago.isoformat(), "before": six_days.isoformat()}
    if runs < 1_000_000:  # quick: the data spans runs * 2.5 s
        span = timedelta(seconds=runs * 2.5)
        window = {"after": (now - span * 0.5).isoformat(), "before": (now - span * 0.4).isoformat()}
    mid = f"e{runs // 2:09d}"
    return {
        "no filter": {},
        "function": {"function_id": "bench-fn-7"},
        "status FAILED (5%)": {"status": "FAILED"},
        "status QUEUED (0.3%)": {"status": "QUEUED"},
        "function + status": {"function_id": "bench-fn-7", "status": "FAILED"},
        "function + rare status": {"function_id": "bench-fn-3", "status": "QUEUED"},
        "time range (1 day, a week back)": window,
        "function + time range": {"function_id": "bench-fn-7", **window},
        "status + time range": {"status": "FAILED", **window},
        "event id": {"event_id": mid},
    }


# In the page, from the document's start: when the timeline of ``want`` steps shows rows
# down to the bottom of the viewport (or its last step), note the time once that frame is
# painted: a requestAnimationFrame callback runs before the frame's style, layout and paint,
# and a message posted from it is handled after them. ``performance.now()`` counts from
# the navigation's start.
WATCH = """(want) => new Promise((resolve) => {
  const check = () => {
    const tl = document.querySelector(`[data-testid=timeline][data-steps="${want}"]`);
    const rows = tl ? tl.querySelectorAll("[data-testid=timeline-row]") : [];
    const last = rows.length ? rows[rows.length - 1] : null;
    if (last && (last.getBoundingClientRect().bottom >= innerHeight
                 || last.dataset.step === `step-${want - 1}`)) {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => resolve({ at: performance.now(), rows: rows.length });
      channel.port2.postMessage(0);
      return;
    }
    requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
})"""


async def render_ms(base: str, run_id: str, rows: int, loads: int) -> dict[str, Any] | str:
    """The big run's timeline in headless Chromium, two ways, ``loads`` times each (after
    one unmeasured warm-up):

    - ``open``: a fresh page load of ``/#/runs/<id>`` (modules from the browser cache), from
      the navigation's start to the frame that paints the timeline's last visible row;
    - ``navigate``: inside the open console (as when a run is clicked in the list), from
      the route change to that frame: the API call plus the render;
    - ``first_visit``: ``open`` in a fresh browser context (no cache: every module fetched).
    """
    if not shutil.which(CHROMIUM):
        return "skipped: no /usr/bin/chromium"
    from playwright.async_api import async_playwright

    start_watch = f"if (location.hash.startsWith('#/runs/')) window.__timeline = ({WATCH})({rows});"
    in_app = (
        "async () => { location.hash = '#/runs'; await new Promise(r => setTimeout(r, 300));"
        f" const watch = ({WATCH}); const t0 = performance.now();"
        f" location.hash = '#/runs/{run_id}'; const seen = await watch({rows});"
        " return seen.at - t0; }"
    )
    last = f"[data-testid=timeline-row][data-step='step-{rows - 1}']"
    opened, navigated, cold, visible = [], [], [], 0
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.add_init_script(start_watch)
        await page.goto(f"{base}/")  # modules cached, as for anyone who opened the console
        for _ in range(loads + 1):
            await page.goto("about:blank")
            await page.goto(f"{base}/#/runs/{run_id}")
            seen = await page.evaluate("window.__timeline")
            opened.append(float(seen["at"]))
            visible = int(seen["rows"])
        for _ in range(loads + 1):
            navigated.append(float(await page.evaluate(in_app)))
        for _ in range(loads):  # a first visit: a new context, nothing cached
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            await context.add_init_script(start_watch)
            cold_page = await context.new_page()
            await cold_page.goto(f"{base}/#/runs/{run_id}")
            cold.append(float((await cold_page.evaluate("window.__timeline"))["at"]))
            await context.close()
        # Scrolling to the end shows the last step: every row is reachable.
        await page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        await page.wait_for_selector(last, timeout=10_000)
        await browser.close()
    opened, navigated = opened[1:], navigated[1:]
    print(
        f"  timeline of {rows} steps, navigation to last visible row painted:"
        f" p50 {summary(opened)['p50']:.0f} ms, max {max(opened):.0f} ms over {loads} loads"
        f" ({visible} rows in the DOM); in-app p50 {summary(navigated)['p50']:.0f} ms,"
        f" max {max(navigated):.0f} ms; first visit (nothing cached) p50"
        f" {summary(cold)['p50']:.0f} ms, max {max(cold):.0f} ms",
        flush=True,
    )
    return {
        "open": summary(opened), "navigate": summary(navigated), "first_visit": summary(cold),
        "open_samples": [round(x, 1) for x in opened], "rows_in_dom": visible,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="20,000 runs, a 100-step run (CI)")
    ap.add_argument("--runs", type=int, help="runs to seed (default 1,000,000)")
    ap.add_argument("--steps-per-run", type=int, default=10, help="steps per run (10)")
    ap.add_argument("--big-steps", type=int, help="steps in the big run (1,000)")
    ap.add_argument("--repeats", type=int, default=20, help="timed requests per figure (20)")
    ap.add_argument("--loads", type=int, default=7, help="timed page loads of the big run (7)")
    ap.add_argument("--data-dir", default=".bench/console", help="PostgreSQL data (kept)")
    ap.add_argument("--reseed", action="store_true", help="delete the data and seed again")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    runs = args.runs or (20_000 if args.quick else 1_000_000)
    big_steps = args.big_steps or (100 if args.quick else 1000)
    data = Path(args.data_dir) / f"{runs}x{args.steps_per_run}+{big_steps}"
    fresh = args.reseed or not (data / "seeded").exists()  # written once a seed completed
    if (args.reseed or fresh) and data.exists():
        shutil.rmtree(data)
    pg, nats_server = PostgresServer(data / "postgres"), NatsServer(data / "nats")
    pg.start()
    nats_server.start()
    gateway = None
    try:
        asyncio.run(migrate(pg.url))
        result: dict[str, Any] = {"runs": runs, "steps_per_run": args.steps_per_run,
                                  "big_run_steps": big_steps}  # fmt: skip
        if fresh:
            print(f"seeding {runs:,} runs x {args.steps_per_run} steps ...", flush=True)
            result["seed_seconds"] = seed(pg.url, runs, args.steps_per_run, big_steps)
            (data / "seeded").write_text(json.dumps(result["seed_seconds"]))
            print(f"seeded: {result['seed_seconds']}", flush=True)
        with psycopg.connect(pg.url) as conn:
            counts = conn.execute(
                "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM steps)"
            ).fetchone()
        result["rows"] = {"runs": counts[0], "steps": counts[1]} if counts else {}
        port = _free_port()
        env = {
            **os.environ, "FERRYMAN_DATABASE_URL": pg.url, "FERRYMAN_NATS_URL": nats_server.url,
            "FERRYMAN_AUTH": "false",  # a local gateway, as in ferryman dev
        }  # fmt: skip
        gateway = subprocess.Popen(
            [sys.executable, "-m", "ferryman_worker.cli", "gateway", "--port", str(port)], env=env
        )
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as client:
            deadline = time.monotonic() + 180  # a loaded machine starts it slowly
            while time.monotonic() < deadline:
                try:
                    if client.get("/ready").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            result["list"] = measure_lists(client, pg.url, runs, args.repeats)
            run_api, body = timed(client, "/v1/runs/big-run", args.repeats)
            assert len(body["data"]["steps"]) == big_steps, "the big run's steps are all there"
            result["big_run_api_ms"] = run_api
            result["functions_api_ms"] = timed(client, "/v1/functions", 5)[0]
        result["big_run_render_ms"] = asyncio.run(render_ms(base, "big-run", big_steps, args.loads))
    finally:
        if gateway is not None:
            gateway.terminate()
            gateway.wait(30)
        nats_server.stop()
        pg.stop()
    result["load_average"] = os.getloadavg()
    return report(result, args.json, gate_render=not args.quick)


def measure_lists(client: httpx.Client, url: str, runs: int, repeats: int) -> dict[str, Any]:
    from datetime import datetime

    out: dict[str, Any] = {}
    for name, params in filters(runs).items():
        page = httpx.QueryParams({**params, "limit": 50})
        first, body = timed(client, f"/v1/runs?{page}", repeats)
        assert body["data"] or "QUEUED" in params.get("status", ""), f"{name}: empty page"
        figures = {"first_page": first, "rows": len(body["data"])}
        if body.get("cursor"):
            nxt = httpx.QueryParams({**params, "limit": 50, "cursor": body["cursor"]})
            figures["next_page"] = timed(client, f"/v1/runs?{nxt}", repeats)[0]
        dated = {**params}
        for key in ("after", "before"):
            if key in params:
                dated[f"{key}_dt"] = datetime.fromisoformat(params[key])
        figures["plan"] = explain(url, dated)
        out[name] = figures
        p50, top = first["p50"], first["max"]
        print(f"  {name:34} p50 {p50:7.1f} ms  max {top:7.1f} ms  {figures['plan']}", flush=True)
    return out


def report(result: dict[str, Any], path: str | None, gate_render: bool) -> int:
    """Print the verdict; non-zero when a target is missed. The render's worst load gates
    only the full run (``gate_render``): ``--quick`` runs on busy CI machines, reports it."""
    worst_list = max(
        max(f["first_page"]["p50"], f.get("next_page", {"p50": 0})["p50"])
        for f in result["list"].values()
    )
    render = result["big_run_render_ms"]
    opened = render["open"] if isinstance(render, dict) else None
    api_p50 = result["big_run_api_ms"]["p50"]
    render_ok = opened is None or opened["max"] <= TARGET_RUN_MS
    result["verdict"] = {
        "runs_list_worst_p50_ms": round(worst_list, 1),
        "runs_list_ok": worst_list <= TARGET_LIST_MS,
        "big_run_api_p50_ms": round(api_p50, 1),
        "big_run_render_p50_ms": None if opened is None else round(opened["p50"], 1),
        "big_run_render_max_ms": None if opened is None else round(opened["max"], 1),
        "big_run_ok": api_p50 <= TARGET_RUN_MS and render_ok,
        "render_gated": gate_render,
        "load_average": [round(x, 2) for x in result["load_average"]],
    }
    print(json.dumps(result["verdict"], indent=2))
    if path:
        Path(path).write_text(json.dumps(result, indent=2, default=str))
    ok = result["verdict"]["runs_list_ok"] and api_p50 <= TARGET_RUN_MS
    return 0 if ok and (render_ok or not gate_render) else 1


if __name__ == "__main__":
    sys.exit(main())
