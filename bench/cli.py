"""``python -m bench``: start PostgreSQL and NATS, run the scenarios on both systems, report.

Every (scenario, system) pair runs in a fresh child process (``bench.runner``) against its
own database on the one PostgreSQL, one after the other, so the two systems never compete
for the machine and a figure such as memory growth belongs to exactly one of them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.common import Result

SCENARIOS = "abcdefghi"
# Scenarios measured against the machine's own ceiling in the same run, not against DBOS.
PEERLESS = "ghi"
SYSTEMS = ("ferryman", "dbos")

FULL: dict[str, dict[str, Any]] = {
    "a": {"steps": 1000, "repeats": 3},
    "b": {"runs": 1000, "steps": 10},
    "c": {"runs": 500, "gateway": True},
    "d": {"runs": 10000, "secs": 5},
    "e": {"waits": 10000, "rate": 5000, "secs": 20, "matches": 200, "batch": 250, "noise": "mixed"},
    "f": {
        "runs": 10000,
        "keys": 100,
        "limit": 2,
        "step_ms": 10,
        "rate": 200,
        "throttle_s": 10,
        "events": 10000,
        "debounce_keys": 1000,
        "debounce_s": 30,
    },
    "g": {"clients": 64, "secs": 20},
    "h": {"secs": 600, "sleep": 0.5},
    "i": {"runs": 5000, "steps": 10, "workers": [1, 2, 4]},
}
QUICK: dict[str, dict[str, Any]] = {
    "a": {"steps": 100, "repeats": 1},
    "b": {"runs": 100, "steps": 10},
    "c": {"runs": 30, "gateway": True},
    "d": {"runs": 200, "secs": 2},
    "e": {"waits": 500, "rate": 1000, "secs": 4, "matches": 20, "batch": 100, "noise": "mixed"},
    "f": {  # a longer step, so that two runs of a key do meet and the limit binds
        "runs": 400,
        "keys": 20,
        "limit": 2,
        "step_ms": 300,
        "rate": 20,
        "throttle_s": 5,
        "events": 400,
        "debounce_keys": 50,
        "debounce_s": 2,
    },
    "g": {"clients": 16, "secs": 3},
    "h": {"secs": 20, "sleep": 0.5},
    "i": {"runs": 100, "steps": 10, "workers": [1, 2]},
}
TIMEOUTS = {
    "a": 180.0,
    "b": 300.0,
    "c": 300.0,
    "d": 600.0,
    "e": 300.0,
    "f": 900.0,
    "g": 300.0,
    "h": 900.0,
    "i": 600.0,
}
QUICK_TIMEOUT = 30.0
QUICK_TIMEOUTS = {"f": 45.0}  # four measurements, each a few seconds


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m bench",
        description="Ferryman benchmarks side by side with DBOS Transact on the same "
        "PostgreSQL. Scenarios: (a) one run of N sequential no-op steps, ms/step; "
        "(b) N event-triggered runs of M no-op steps, steps/s; (c) event-to-first-"
        "step latency p50/p99, one at a time; (d) N runs sleeping S seconds: "
        "memory growth and resume lateness; (e) the matcher: N pending wait_for_event "
        "waits under a stream of unrelated events, matcher backlog and resume latency; "
        "(f) flow control: keyed concurrency (throughput, peak per key, fairness), a "
        "throttle's achieved rate, a debounce's runs (each with its key's last event); "
        "(g) ingest: 64 keep-alive clients POSTing single events (and batches of 100) to "
        "the gateway, as a share of a no-op route on the same HTTP stack.",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="small sizes and 30 s budgets: a smoke run for CI (< 60 s)",
    )
    ap.add_argument(
        "--scenarios",
        default=SCENARIOS,
        help=f"which scenarios, e.g. 'ab' or 'a,c' (default: {SCENARIOS})",
    )
    ap.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help="ferryman, dbos or both (default: ferryman,dbos)",
    )
    ap.add_argument("--a-steps", type=int, help="(a) steps in the run (default 1000)")
    ap.add_argument("--a-repeats", type=int, help="(a) runs measured; the median counts (3)")
    ap.add_argument("--b-runs", type=int, help="(b) runs (default 1000)")
    ap.add_argument("--b-steps", type=int, help="(b) steps per run (default 10)")
    ap.add_argument("--c-runs", type=int, help="(c) runs measured (default 500)")
    ap.add_argument("--d-runs", type=int, help="(d) sleeping runs (default 10000)")
    ap.add_argument("--d-secs", type=float, help="(d) sleep in seconds (default 5)")
    ap.add_argument("--e-waits", type=int, help="(e) pending wait_for_event waits (default 10000)")
    ap.add_argument("--e-rate", type=float, help="(e) unrelated events per second (default 5000)")
    ap.add_argument("--e-secs", type=float, help="(e) seconds of load (default 20)")
    ap.add_argument(
        "--e-matches", type=int, help="(e) matching events spread over the load (default 200)"
    )
    ap.add_argument(
        "--e-batch", type=int, help="(e) unrelated events per EventBus.send call (default 250)"
    )
    ap.add_argument(
        "--e-noise",
        choices=["other-name", "same-name", "mixed"],
        help="(e) unrelated events: a name nobody waits for, the waited-for name with a key "
        "no wait has, or half of each, batch by batch (default mixed)",
    )
    ap.add_argument("--f-runs", type=int, help="(f) runs of one short step, keyed (10000)")
    ap.add_argument("--f-keys", type=int, help="(f) concurrency keys (100)")
    ap.add_argument("--f-limit", type=int, help="(f) concurrency limit per key (2)")
    ap.add_argument("--f-step-ms", type=float, help="(f) the step's length in ms (10)")
    ap.add_argument("--f-rate", type=int, help="(f) throttle: run starts per second (200)")
    ap.add_argument("--f-throttle-secs", type=float, help="(f) throttle: seconds of starts (10)")
    ap.add_argument("--f-events", type=int, help="(f) debounce: events (10000)")
    ap.add_argument("--f-debounce-keys", type=int, help="(f) debounce: keys (1000)")
    ap.add_argument("--f-debounce-secs", type=float, help="(f) debounce period in seconds (30)")
    ap.add_argument("--g-clients", type=int, help="(g) concurrent keep-alive clients (64)")
    ap.add_argument("--g-secs", type=float, help="(g) seconds of load per measurement (20)")
    ap.add_argument("--h-secs", type=float, help="(h) seconds of paced load (600)")
    ap.add_argument(
        "--h-rate",
        type=float,
        help="(h) runs/s offered (default: half of (b)'s runs/s in the same run, else 20)",
    )
    ap.add_argument(
        "--no-gateway",
        action="store_true",
        help="(c) skip the latency through the gateway's POST /e/{key}",
    )
    ap.add_argument(
        "--dbos-queue",
        action="store_true",
        help="(b) start DBOS workflows through a DBOS queue instead of DBOS.start_workflow_async",
    )
    ap.add_argument(
        "--dbos-gather",
        action="store_true",
        help="(b) start DBOS's workflows all at once (asyncio.gather) instead of one after another",
    )
    ap.add_argument(
        "--dbos-style",
        choices=["sync", "async"],
        default="sync",
        help="(a, b, c, f) DBOS workflows and steps as plain def started with "
        "DBOS.start_workflow (default: DBOS's fastest here; each workflow "
        "runs on a thread) or async def started with start_workflow_async "
        "(on the event loop, like Ferryman). (d) always uses async "
        "workflows and DBOS.sleep_async (10,000 sleeping threads would not "
        "be how anyone uses DBOS)",
    )
    ap.add_argument(
        "--timeout-scale",
        type=float,
        default=1.0,
        help="multiply every scenario's time budget (a 180 s, b 300 s, c 300 s, d 600 s, "
        "e 300 s, f 900 s, g 300 s)",
    )
    ap.add_argument(
        "--out", type=Path, help="write a markdown report here (e.g. docs/benchmarks.md)"
    )
    ap.add_argument(
        "--json",
        type=Path,
        help="write the results as JSON (default: next to --out, or "
        "bench-results.json in the work folder when --out is not given)",
    )
    ap.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run Ferryman's processes under py-spy and write collapsed stacks "
        "and a summary per scenario into DIR (figures are then not "
        "representative)",
    )
    ap.add_argument(
        "--workdir",
        type=Path,
        help="where PostgreSQL and NATS keep their data (default: a temp dir, removed afterwards)",
    )
    ap.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="only re-render the markdown (to --out, else stdout) from a saved results JSON",
    )
    return ap


def sizes(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    base = QUICK if args.quick else FULL
    out = {k: dict(v) for k, v in base.items()}
    overrides = {
        ("a", "steps"): args.a_steps,
        ("a", "repeats"): args.a_repeats,
        ("b", "runs"): args.b_runs,
        ("b", "steps"): args.b_steps,
        ("c", "runs"): args.c_runs,
        ("d", "runs"): args.d_runs,
        ("d", "secs"): args.d_secs,
        ("e", "waits"): args.e_waits,
        ("e", "rate"): args.e_rate,
        ("e", "secs"): args.e_secs,
        ("e", "matches"): args.e_matches,
        ("e", "batch"): args.e_batch,
        ("e", "noise"): args.e_noise,
        ("f", "runs"): args.f_runs,
        ("f", "keys"): args.f_keys,
        ("f", "limit"): args.f_limit,
        ("f", "step_ms"): args.f_step_ms,
        ("f", "rate"): args.f_rate,
        ("f", "throttle_s"): args.f_throttle_secs,
        ("f", "events"): args.f_events,
        ("f", "debounce_keys"): args.f_debounce_keys,
        ("f", "debounce_s"): args.f_debounce_secs,
        ("g", "clients"): args.g_clients,
        ("g", "secs"): args.g_secs,
        ("h", "secs"): args.h_secs,
        ("h", "rate"): args.h_rate,
    }
    for (sc, key), value in overrides.items():
        if value is not None:
            out[sc][key] = value
    if args.no_gateway:
        out["c"]["gateway"] = False
    if args.dbos_queue:
        out["b"]["dbos_queue"] = True
    if args.dbos_gather:
        out["b"]["dbos_gather"] = True
    for sc in "abcf":
        out[sc]["dbos_style"] = args.dbos_style
    return out


def soak_rate(results: list[Result]) -> float:
    """Half the runs/s (b) measured in this run: the machine's speed of the day."""
    for r in results:
        if r.system == "ferryman" and r.scenario == "b" and r.status == "ok":
            return round(float(r.metrics["runs_per_second"]) / 2, 1)
    return 20.0


def machine(pg_url: str) -> dict[str, Any]:
    import psutil
    import psycopg

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        pg_version = row[0] if row else "?"
    nats_bin = shutil.which("nats-server") or str(Path(sys.executable).parent / "nats-server")
    try:
        nats_version = subprocess.run(
            [nats_bin, "--version"], check=False, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except OSError:
        nats_version = "?"
    from importlib.metadata import version

    def ver(dist: str) -> str:
        try:
            return version(dist)
        except Exception:
            return "?"

    repo = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            check=False,
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "sdk", "worker"],
            check=False,
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        if dirty:
            commit += " + uncommitted changes in sdk/ or worker/"
    except OSError:
        commit = "?"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgresql": pg_version,
        "postgresql_settings": "embedded (ferryman_worker.dev.embedded.PostgresServer): "
        "fsync=on, synchronous_commit=on, shared_buffers=256MB, "
        "max_connections=300",
        "nats_server": nats_version,
        "ferryman_commit": commit,
        "dbos": ver("dbos"),
        "nats_py": ver("nats-py"),
        "psycopg": ver("psycopg"),
    }


def run_pair(
    system: str,
    scenario: str,
    params: dict[str, Any],
    timeout: float,
    pg_admin_url: str,
    nats_url: str,
    work: Path,
    profile: Path | None,
    pids: str = "",
) -> Result:
    import psycopg

    db = f"{system}_{scenario}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"')
    db_url = pg_admin_url.rsplit("/", 1)[0] + f"/{db}"
    result_path = work / f"result-{system}-{scenario}.json"
    cmd = [
        sys.executable,
        "-m",
        "bench.runner",
        "--system",
        system,
        "--scenario",
        scenario,
        "--db-url",
        db_url,
        "--nats-url",
        nats_url,
        "--params",
        json.dumps(params),
        "--timeout",
        str(timeout),
        "--result",
        str(result_path),
    ]
    if profile is not None and system == "ferryman":
        profile.mkdir(parents=True, exist_ok=True)
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        cmd = [
            spy,
            "record",
            "--rate",
            "200",
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(profile / f"ferryman-{scenario}.txt"),
            "--",
            *cmd,
        ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FERRYMAN_", "DBOS_"))}
    env["BENCH_TMP"] = str(work)
    env["BENCH_PIDS"] = pids
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    hard = timeout + 120
    log = work / f"runner-{system}-{scenario}.log"
    print(f"  {system:8} ({scenario}) ... ", end="", flush=True)
    t0 = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            proc.wait(hard)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    took = time.monotonic() - t0
    if result_path.exists():
        data = json.loads(result_path.read_text())
        result = Result(**data)
    else:
        tail = log.read_text(errors="replace")[-2000:]
        result = Result(
            system=system,
            scenario=scenario,
            params=params,
            status="timeout" if took >= hard else "error",
            message=(
                f"{system} was stopped after {hard:.0f} s without a result"
                if took >= hard
                else f"runner exited {proc.returncode}: " + tail.strip().splitlines()[-1]
                if tail.strip()
                else ""
            ),
        )
    if result.status != "ok":
        print(f"{result.status.upper()} ({took:.0f} s): {result.message}", flush=True)
    else:
        print(f"done ({took:.0f} s) {report.headline(result)}", flush=True)
    if profile is not None and system == "ferryman":
        from bench import profiles

        raw = profile / f"ferryman-{scenario}.txt"
        if raw.exists():
            (profile / f"ferryman-{scenario}-summary.txt").write_text(
                profiles.summarize(raw.read_text())
            )
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    return result


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.render:
        doc = json.loads(args.render.read_text())
        if args.out:
            args.out.write_text(report.markdown(doc))
        else:
            print(report.markdown(doc))
        return 0
    scenarios = [s for s in args.scenarios.replace(",", "") if s in SCENARIOS]
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    bad = [s for s in systems if s not in SYSTEMS]
    if bad or not scenarios or not systems:
        print(
            f"error: --systems takes ferryman,dbos and --scenarios letters from {SCENARIOS}",
            file=sys.stderr,
        )
        return 2
    if args.profile is not None and not (
        shutil.which("py-spy") or (Path(sys.executable).parent / "py-spy").exists()
    ):
        print("error: --profile needs py-spy: `uv pip install py-spy`", file=sys.stderr)
        return 2
    from ferryman_worker.dev.embedded import NatsServer, PostgresServer

    params = sizes(args)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="ferryman-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    started_at = datetime.now(UTC)
    t_start = time.monotonic()
    pg = PostgresServer(work / "pg")
    nats = NatsServer(work / "nats")
    load_before = os.getloadavg()
    print(f"starting PostgreSQL and NATS in {work} ...", flush=True)
    pg.start()
    results: list[Result] = []
    try:
        nats.start()
        info = machine(pg.url)
        assert pg.proc is not None
        assert nats.proc is not None
        pids = f"postgres:{pg.proc.pid},nats:{nats.proc.pid}"
        print(
            f"PostgreSQL {info['postgresql']}, {info['nats_server']}, DBOS {info['dbos']}, "
            f"{info['cores']} cores",
            flush=True,
        )
        for sc in scenarios:
            budget = QUICK_TIMEOUTS.get(sc, QUICK_TIMEOUT) if args.quick else TIMEOUTS[sc]
            budget *= args.timeout_scale
            if sc == "h":
                params["h"].setdefault("rate", soak_rate(results))
                budget = max(budget, float(params["h"]["secs"]) * 1.5 + 60)
            print(f"scenario ({sc}) {report.TITLES[sc](params[sc])}", flush=True)
            for system in systems:
                if system != "ferryman" and sc in PEERLESS:
                    continue
                results.append(
                    run_pair(
                        system, sc, params[sc], budget, pg.url, nats.url, work, args.profile, pids
                    )
                )
    finally:
        nats.stop()
        pg.stop()
    wall = time.monotonic() - t_start
    rows = report.rows(results, params)
    print()
    print(report.text_table(rows))
    doc = {
        "command": command,
        "date": started_at.isoformat(timespec="seconds"),
        "wall_seconds": round(wall, 1),
        "quick": args.quick,
        "machine": info,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "params": params,
        "rows": rows,
        "results": [r.__dict__ for r in results],
    }
    json_path = args.json or (
        args.out.with_suffix(".json") if args.out else Path("bench-results.json")
    )
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(doc, indent=2, default=str))
    print(f"\nresults: {json_path}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report.markdown(doc))
        print(f"report:  {args.out}")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    failed = [r for r in results if r.status != "ok"]
    broken = [v for r in results if r.system == "ferryman" for v in r.violations]
    if broken:
        print("\nflow control broke its guarantees:\n  " + "\n  ".join(broken))
    return 1 if failed or broken else 0
