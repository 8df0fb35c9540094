"""The table: scenario, Ferryman, DBOS, ratio, target, pass/fail; as text and markdown."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from bench.common import Result

TITLES: dict[str, Callable[[dict[str, Any]], str]] = {
    "a": lambda p: f"one run of {p['steps']:,} sequential no-op steps",
    "b": lambda p: f"{p['runs']:,} event-triggered runs of {p['steps']} no-op steps",
    "c": lambda p: f"event-to-first-step latency over {p['runs']:,} runs, one at a time",
    "d": lambda p: f"{p['runs']:,} runs sleeping {p['secs']:g} s",
    "f": lambda p: (
        f"flow control: {p['runs']:,} runs of one {p['step_ms']:g} ms step over {p['keys']} "
        f"keys, concurrency {p['limit']} per key; throttle {p['rate']}/s for "
        f"{p['throttle_s']:g} s; debounce of {p['events']:,} events over "
        f"{p['debounce_keys']:,} keys"
    ),
    "g": lambda p: (
        f"ingest: {p['clients']} keep-alive clients POSTing for {p['secs']:g} s, "
        "single events and batches of 100, against a no-op route on the same HTTP stack"
    ),
    "h": lambda p: (
        f"soak: {p['secs']:g} s of paced single-event POSTs at half (b)'s runs/s, "
        f"runs of 5 steps and a {p['sleep']:g} s sleep"
    ),
    "i": lambda p: (
        f"scale-out: {p['runs']:,} runs of {p['steps']} no-op steps on "
        f"{', '.join(map(str, p['workers']))} worker processes"
    ),
    "e": lambda p: (
        f"the matcher: {p['waits']:,} pending waits, {p['rate']:,.0f} unrelated "
        f"events/s for {p['secs']:g} s ({p.get('noise', 'mixed')}), "
        f"{p['matches']:,} matching events"
    ),
}


def _get(result: Result | None, *path: str) -> float | None:
    if result is None or result.status != "ok":
        return None
    value: Any = result.metrics
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def headline(result: Result) -> str:
    m = result.metrics
    if result.scenario == "a":
        return f"{m['ms_per_step']:.3f} ms/step"
    if result.scenario == "b":
        return f"{m['steps_per_second']:,.0f} steps/s"
    if result.scenario == "c":
        out = f"p50 {m['direct_ms']['p50']:.1f} ms, p99 {m['direct_ms']['p99']:.1f} ms"
        if "gateway_ms" in m:
            out += (
                f"; gateway p50 {m['gateway_ms']['p50']:.1f} ms, "
                f"p99 {m['gateway_ms']['p99']:.1f} ms"
            )
        return out
    if result.scenario == "e":
        out = f"resume p50 {m['resume_ms']['p50']:.1f} ms, p99 {m['resume_ms']['p99']:.1f} ms"
        if m.get("unrelated_rate") is not None:
            out += f"; {m['unrelated_rate']:,.0f} unrelated events/s"
        if m.get("backlog_max") is not None:
            out += (
                f"; matcher backlog max {m['backlog_max']:,.0f}, "
                f"at load end {m['backlog_at_load_end']:,.0f}"
            )
        return out
    if result.scenario == "f":
        k, t, d = m["keyed"], m["throttle"], m["debounce"]
        out = (
            f"keyed {k['steps_per_second']:,.0f} steps/s (no limit "
            f"{m['unlimited']['steps_per_second']:,.0f}), peak/key "
            f"{k['max_concurrency_per_key']}, Jain {k['jain_fairness']:.3f}; throttle "
            f"{t['achieved_rate'] or 0:,.1f}/s; debounce {d['runs_created']:,} runs, "
            f"{d['runs_with_last_event']:,} with the last event"
        )
        broken = result.violations or m.get("checks_failed")
        return out + (f"; BROKEN: {'; '.join(broken)}" if broken else "")
    if result.scenario == "g":
        return (
            f"{m['single']['events_per_s']:,.0f} events/s single "
            f"({m['share_of_ceiling']:.2f} of the no-op's {m['ceiling']['events_per_s']:,.0f}), "
            f"p99 {m['single']['p99_ms']:.1f} ms; batches {m['batched']['events_per_s']:,.0f}/s"
        )
    if result.scenario == "h":
        return (
            f"{m['completed']:,} runs at {m['offered_runs_per_s']:.1f}/s, event to end "
            f"p99 {m['event_to_end_s']['p99']:.2f} s ({m['sleep_s']:g} s asleep); RSS "
            f"gateway {m['gateway_rss_growth']:+.0%}, worker {m['worker_rss_growth']:+.0%}"
        )
    if result.scenario == "i":
        return "; ".join(
            f"{r['workers']}: {r['steps_per_second']:,.0f} steps/s" for r in m["by_workers"]
        ) + (f"; CPU µs/step {m['cpu_us_per_step']}")
    return (
        f"RSS +{m['rss_growth_mb']:.1f} MB, late p99 {m['late_s']['p99']:.2f} s, "
        f"all done after {m['all_done_after_s']:.1f} s"
    )


def rows(results: list[Result], params: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per figure. ``advantage`` > 1 means Ferryman does better than DBOS."""
    by = {(r.system, r.scenario): r for r in results}
    out: list[dict[str, Any]] = []

    def add(
        sc: str,
        label: str,
        unit: str,
        path: tuple[str, ...],
        better: str,
        target: str,
        check: Callable[[float, float | None], bool | None],
        dbos_path: tuple[str, ...] | None = None,
        fmt: str = "{:,.2f}",
    ) -> None:
        f_res, d_res = by.get(("ferryman", sc)), by.get(("dbos", sc))
        if f_res is None and d_res is None:
            return
        f = _get(f_res, *path)
        d = _get(d_res, *(dbos_path or path))
        advantage = None
        if f is not None and d is not None and f > 0 and d > 0:
            advantage = d / f if better == "lower" else f / d
        verdict = check(f, d) if f is not None else False
        out.append(
            {
                "scenario": sc,
                "figure": label,
                "unit": unit,
                "ferryman": f,
                "dbos": d,
                "advantage": advantage,
                "target": target,
                "result": "PASS" if verdict else ("FAIL" if verdict is False else "n/a"),
                "ferryman_status": _status(f_res),
                "dbos_status": _status(d_res),
                "fmt": fmt,
            }
        )

    if "a" in params:
        add(
            "a",
            f"(a) {params['a']['steps']:,} sequential steps",
            "ms/step",
            ("ms_per_step",),
            "lower",
            "≤ 1.0 ms/step",
            lambda f, d: f <= 1.0,
            fmt="{:,.3f}",
        )
        add(
            "a",
            "(a) per step, against one raw INSERT + COMMIT round trip (the floor)",
            "× floor",
            ("times_floor",),
            "lower",
            "≤ 2×",
            lambda f, _: f <= 2,
        )
    if "b" in params:
        b = params["b"]

        def check_b(f: float, d: float | None) -> bool | None:
            if f < 2000:
                return False
            if d is None:
                return None
            return f >= 8 * d

        add(
            "b",
            f"(b) {b['runs']:,} runs × {b['steps']} steps",
            "steps/s",
            ("steps_per_second",),
            "higher",
            "≥ 2,000 steps/s and ≥ 8× DBOS",
            check_b,
            fmt="{:,.0f}",
        )
        add(
            "b",
            "(b) steps/s as a share of raw group commits of the same rows (the floor)",
            "×",
            ("share_of_floor",),
            "higher",
            "reported",
            lambda f, _: None,
        )
    if "c" in params:
        add(
            "c",
            "(c) event → first step, p50 (EventBus.send)",
            "ms",
            ("direct_ms", "p50"),
            "lower",
            "≤ 10 ms",
            lambda f, d: f <= 10,
        )
        add(
            "c",
            "(c) event → first step, p99 (EventBus.send)",
            "ms",
            ("direct_ms", "p99"),
            "lower",
            "≤ 50 ms",
            lambda f, d: f <= 50,
        )
        if params["c"].get("gateway", True):
            add(
                "c",
                "(c) event → first step, p50 (gateway POST /e)",
                "ms",
                ("gateway_ms", "p50"),
                "lower",
                "≤ 10 ms",
                lambda f, d: f <= 10,
                dbos_path=("direct_ms", "p50"),
            )
            add(
                "c",
                "(c) event → first step, p99 (gateway POST /e)",
                "ms",
                ("gateway_ms", "p99"),
                "lower",
                "≤ 50 ms",
                lambda f, d: f <= 50,
                dbos_path=("direct_ms", "p99"),
            )
    if "d" in params:
        d = params["d"]
        add(
            "d",
            f"(d) {d['runs']:,} sleeping runs: RSS growth",
            "MB",
            ("rss_growth_mb",),
            "lower",
            "≤ 50 MB",
            lambda f, _: f <= 50,
            fmt="{:,.1f}",
        )
        add(
            "d",
            f"(d) {d['runs']:,} sleeping runs: resume lateness p99",
            "s",
            ("late_s", "p99"),
            "lower",
            "≤ 2 s",
            lambda f, _: f <= 2,
        )
    if "e" in params:
        e = params["e"]
        rate = float(e["rate"])
        add(
            "e",
            f"(e) {e['waits']:,} pending waits: unrelated events sent",
            "events/s",
            ("unrelated_rate",),
            "higher",
            f"≥ {rate * 0.98:,.0f}/s (98% of {rate:,.0f})",
            lambda f, _: f >= 0.98 * rate,
            fmt="{:,.0f}",
        )
        add(
            "e",
            f"(e) {e['waits']:,} pending waits: matcher backlog, max during load",
            "events",
            ("backlog_max",),
            "lower",
            f"≤ 1 s of load ({rate:,.0f}), back to 0 after",
            lambda f, _: f <= rate,
            fmt="{:,.0f}",
        )
        add(
            "e",
            f"(e) {e['waits']:,} pending waits: matching event → run resumed, p99",
            "ms",
            ("resume_ms", "p99"),
            "lower",
            "≤ 50 ms",
            lambda f, _: f <= 50,
        )
    if "f" in params:
        _flow_rows(params["f"], by, add)
    if "g" in params:
        add(
            "g",
            "(g) ingest, single-event POSTs: share of the no-op ceiling",
            "×",
            ("share_of_ceiling",),
            "higher",
            "≥ 0.5",
            lambda f, _: f >= 0.5,
        )
        add(
            "g",
            "(g) ingest, single-event POSTs",
            "events/s",
            ("single", "events_per_s"),
            "higher",
            "≥ 3,000 (on the developers' benchmark machine)",
            lambda f, _: None,
            fmt="{:,.0f}",
        )
        add(
            "g",
            "(g) ingest, single-event POSTs: p99",
            "ms",
            ("single", "p99_ms"),
            "lower",
            "≤ 25 ms",
            lambda f, _: f <= 25,
        )
        add(
            "g",
            "(g) ingest, batches of 100 events per POST",
            "events/s",
            ("batched", "events_per_s"),
            "higher",
            "≥ 30,000",
            lambda f, _: f >= 30000,
            fmt="{:,.0f}",
        )
    if "h" in params:
        add(
            "h",
            "(h) soak: event to run end, p99, less the sleep",
            "s",
            ("p99_minus_sleep_s",),
            "lower",
            "≤ 1 s",
            lambda f, _: f <= 1,
            fmt="{:.2f}",
        )
        for side in ("gateway", "worker"):
            add(
                "h",
                f"(h) soak: {side} RSS growth after warm-up",
                "×",
                (f"{side}_rss_growth",),
                "lower",
                "≤ 0.10 (runs of minutes)",
                lambda f, _: (f <= 0.10) if params["h"]["secs"] >= 120 else None,
                fmt="{:+.2f}",
            )
        add(
            "h",
            "(h) soak: messages left in FERRYMAN_WORK at the end",
            "msgs",
            ("work_stream_left",),
            "lower",
            "0",
            lambda f, _: f == 0,
            fmt="{:.0f}",
        )
    if "i" in params:
        add(
            "i",
            "(i) scale-out: worst throughput with more workers, against 1 worker",
            "×",
            ("worst_scaling",),
            "higher",
            "≥ 0.9 (must not drop)",
            lambda f, _: f >= 0.9,
        )
        add(
            "i",
            "(i) scale-out: projected steps/s on 16 cores (CPU per step)",
            "steps/s",
            ("projected_16_cores_steps_per_s",),
            "higher",
            "reported",
            lambda f, _: None,
            fmt="{:,.0f}",
        )
    return out


def _flow_rows(f: dict[str, Any], by: dict[tuple[str, str], Result], add: Any) -> None:
    limit, rate, keys = int(f["limit"]), float(f["rate"]), int(f["debounce_keys"])
    b = _get(by.get(("ferryman", "b")), "steps_per_second")

    def check_keyed(v: float, d: float | None) -> bool | None:
        if (b is not None and v < 0.5 * b) or (d is not None and v < 5 * d):
            return False
        return None if b is None or d is None else True

    add(
        "f",
        f"(f) keyed concurrency: {f['runs']:,} runs × 1 step, {f['keys']} keys, "
        f"{limit} per key (DBOS: partitioned queue)",
        "steps/s",
        ("keyed", "steps_per_second"),
        "higher",
        "≥ 50% of (b)"
        + (f" ({0.5 * b:,.0f})" if b is not None else ", (b) not run")
        + " and ≥ 5× DBOS",
        check_keyed,
        fmt="{:,.0f}",
    )
    add(
        "f",
        "(f) the same runs without flow control (DBOS: a queue without limits)",
        "steps/s",
        ("unlimited", "steps_per_second"),
        "higher",
        "— (reference)",
        lambda v, d: None,
        fmt="{:,.0f}",
    )
    add(
        "f",
        "(f) keyed concurrency: the most step bodies of one key at once",
        "runs",
        ("keyed", "max_concurrency_per_key"),
        "lower",
        f"≤ {limit}",
        lambda v, d: v <= limit,
        fmt="{:,.0f}",
    )
    add(
        "f",
        "(f) keyed concurrency: Jain's fairness of per-key completion times",
        "index",
        ("keyed", "jain_fairness"),
        "higher",
        "≥ 0.9",
        lambda v, d: v >= 0.9,
        fmt="{:,.3f}",
    )
    add(
        "f",
        f"(f) throttle {rate:g}/s for {f['throttle_s']:g} s: achieved start rate",
        "starts/s",
        ("throttle", "achieved_rate"),
        "higher",
        f"{0.95 * rate:,.1f}–{1.05 * rate:,.1f} (± 5%)",
        lambda v, d: abs(v - rate) <= 0.05 * rate,
        fmt="{:,.1f}",
    )
    add(
        "f",
        f"(f) debounce, {f['events']:,} events over {keys:,} keys: runs created",
        "runs",
        ("debounce", "runs_created"),
        "lower",
        f"exactly {keys:,}",
        lambda v, d: v == keys,
        fmt="{:,.0f}",
    )
    add(
        "f",
        "(f) debounce: events decided per second (a run created or the event folded in)",
        "events/s",
        ("debounce", "events_decided_per_second"),
        "higher",
        "— (reference)",
        lambda v, d: None,
        fmt="{:,.0f}",
    )
    add(
        "f",
        "(f) debounce: runs that got their key's last event",
        "runs",
        ("debounce", "runs_with_last_event"),
        "higher",
        f"{keys:,} (every key)",
        lambda v, d: v == keys,
        fmt="{:,.0f}",
    )


def _status(result: Result | None) -> str:
    if result is None:
        return "not run"
    return result.status if result.status == "ok" else f"{result.status}: {result.message}"


def _cell(value: float | None, fmt: str, status: str) -> str:
    if value is not None:
        return fmt.format(value)
    if status in ("not run", "ok"):
        return "n/a" if status == "ok" else status  # ok without the figure: not measured
    return status.split(":", 1)[0].upper()


def _adv(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.3f}×" if value < 0.1 else f"{value:,.2f}×"


HEADERS = ["scenario", "unit", "Ferryman", "DBOS", "Ferryman vs DBOS", "target", "result"]


def table_cells(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            r["figure"],
            r["unit"],
            _cell(r["ferryman"], r["fmt"], r["ferryman_status"]),
            _cell(r["dbos"], r["fmt"], r["dbos_status"]),
            _adv(r["advantage"]),
            r["target"],
            r["result"],
        ]
        for r in rows
    ]


def text_table(rows: list[dict[str, Any]]) -> str:
    cells = [HEADERS, *table_cells(rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADERS))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if i in (0, 1, 5, 6) else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    notes = [
        f"  {r['figure']}: {who} {s}"
        for r in rows
        for who, s in (("Ferryman", r["ferryman_status"]), ("DBOS", r["dbos_status"]))
        if s not in ("ok", "not run")
    ]
    lines.append("Ferryman vs DBOS: how many times better Ferryman does (> 1 = Ferryman better).")
    if notes:
        lines.append("did not finish:")
        lines.extend(dict.fromkeys(notes))
    return "\n".join(lines)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join(["---", "---", "--:", "--:", "--:", "---", "---"]) + "|",
    ]
    for cells in table_cells(rows):
        cells[-1] = f"**{cells[-1]}**"
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}"
    return str(v)


def details(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        lines.append(
            f"**({r['scenario']}) {r['system']}** — status {r['status']}"
            + (f": {r['message']}" if r["message"] else "")
            + f"; {r['seconds']:.0f} s including start-up and warm-up"
        )
        lines.append("")
        for key, value in r["metrics"].items():
            if key == "how":
                continue
            if isinstance(value, dict):
                text = ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
            elif isinstance(value, list):
                text = ", ".join(_fmt(v) for v in value)
            else:
                text = _fmt(value)
            lines.append(f"- {key}: {text}")
        if "how" in r["metrics"]:
            lines.append(f"- measured: {r['metrics']['how']}")
        lines.append("")
    return "\n".join(lines)


def markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    settings: dict[str, dict[str, Any]] = {}
    for r in doc["results"]:
        settings.setdefault(r["system"], r["settings"])
    fm = settings.get("ferryman", {})
    db = settings.get("dbos", {})
    parts = [
        "# Benchmarks",
        "",
        "Ferryman side by side with [DBOS Transact](https://github.com/dbos-inc/dbos-transact-py)"
        " (Python), both on the same PostgreSQL server in the same run. Produced by "
        "`bench/` — regenerate this page with the command below (`make bench`).",
        "",
        f"- **Command:** `{doc['command']}`",
        f"- **Date:** {doc['date']} (whole run {doc['wall_seconds']:.0f} s)",
        f"- **Machine:** {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB RAM, {m['os']}, "
        f"Python {m['python']}",
        f"- **Servers:** PostgreSQL {m['postgresql']} ({m['postgresql_settings']}); "
        f"{m['nats_server']} (JetStream, file storage)",
        f"- **Load average (1, 5, 15 min):** {_load(doc, 'before')} before, "
        f"{_load(doc, 'after')} after; CPU used by other processes during each measurement "
        "is under Details (`other_processes_cpu_s`)",
        f"- **Versions:** Ferryman commit {m['ferryman_commit']}, dbos {m['dbos']}, "
        f"nats-py {m['nats_py']}, psycopg {m['psycopg']}",
        "",
        markdown_table(doc["rows"]),
        "",
        "*Ferryman vs DBOS* is how many times better Ferryman does (> 1: Ferryman better, "
        "< 1: DBOS better). *result* judges Ferryman against the target; a scenario that did "
        "not finish in its time budget is a FAIL. DBOS has no gateway: its figure in both "
        "(c) pairs is the same, started in-process.",
        *_contention(doc),
        "",
        "## How it is measured",
        "",
        "One PostgreSQL and one NATS server are started from the project's wheels "
        "(`ferryman_worker.dev.embedded`). Each (scenario, system) pair runs in a fresh Python "
        "process with its own database on that PostgreSQL, one after another (never both "
        "at once). Each warms up with the same function before measuring.",
        "",
        "- **Ferryman:** one in-process `Worker` with default settings "
        f"({_settings_line(fm)}); events go in through `EventBus.send` (what the gateway "
        "does after parsing). Figures come from the runs' own timestamps in PostgreSQL "
        "where possible.",
        "- **DBOS:** `DBOS(config)` + `DBOS.launch()` in-process, default configuration. "
        f"(a)–(c): {db.get('mode', '')}; this was DBOS's fastest variant here (async "
        "workflows with `start_workflow_async`, and a `DBOS.register_queue` queue, were "
        "slower; both are available as `--dbos-style async` and `--dbos-queue`). "
        "(d): async workflows with `DBOS.sleep_async`, started with "
        "`DBOS.start_workflow_async`.",
        "- **(a)** one run (median of several) of N sequential no-op steps; from the run's "
        "start (Ferryman: lease taken, `runs.started_at`; DBOS: `started_at_epoch_ms`) to "
        "its end (`runs.ended_at` / `completed_at`), divided by N.",
        "- **(b)** N events (one `EventBus.send` batch) / N workflow starts; "
        "steps per second from just before the first send to the last run's end.",
        "- **(c)** one event at a time, waiting for the first step's body to run before "
        "sending the next; from just before `EventBus.send` (or the HTTP POST to a gateway "
        "running in its own process, the user-facing path) to the step body. DBOS: from just "
        "before starting the workflow to its first `@DBOS.step` body.",
        "- **(d)** N runs that sleep S seconds (`step.sleep` / `DBOS.sleep_async`) then run "
        "one step. Memory: peak RSS of the process hosting the runs (psutil, every 100 ms) "
        "from the first send to the last completion, minus its settled RSS after warm-up. "
        "Lateness: when the step after the sleep started minus the wake time the system "
        "recorded for the sleep.",
        "- **(e)** the matcher. Ferryman: N runs parked in `step.wait_for_event(..., "
        "match='data.k')`; a load generator in its own process sends unrelated events "
        "through `EventBus.send` in batches (PostgreSQL insert + JetStream publish per "
        "batch) at a fixed rate; the `matcher` consumer's backlog on `FERRYMAN_EVENTS` "
        "(`num_pending + num_ack_pending`, JetStream consumer info) is sampled every 0.5 s; "
        "matching events, one at a time at a steady rate over the load, are timed from just "
        "before `EventBus.send` to the first line after the wait in the resumed run. "
        "DBOS has no shared event matcher; its closest primitive is `DBOS.recv`: N "
        "workflows blocked in `DBOS.recv_async(topic)`, unrelated traffic = `DBOS.send_async` "
        "to those workflows on another topic (as fast as it goes up to the rate), matching "
        "= `DBOS.send_async` on the awaited topic; it has no backlog figure.",
        "- **(f)** flow control, judged from what the step bodies recorded (run, key, event "
        "sequence number, start and end). Keyed concurrency: N events with keys round-robin "
        "to a function with `Concurrency(limit, key)` and, as the reference, to one without "
        "flow control (DBOS: a partitioned queue with `partition_concurrency`, and a queue "
        "without limits); the peak per key is a sweep over the recorded intervals; fairness "
        "is Jain's index of the keys' completion times. Throttle: the rate is 1 / the "
        "least-squares slope of the k-th start against k (DBOS: a queue `limiter`). "
        "Debounce: rounds of one event per key, in order; runs counted when every event is "
        "decided and every run has ended (DBOS: `Debouncer`). A broken guarantee makes the "
        "bench exit non-zero (see bench/README.md).",
        "",
        "## Details",
        "",
        details(doc["results"]),
    ]
    return "\n".join(parts).rstrip() + "\n"


def _contention(doc: dict[str, Any]) -> list[str]:
    """A warning when other processes used a noticeable share of the CPU while measuring."""
    shares = []
    for r in doc["results"]:
        cpu = r.get("metrics", {}).get("cpu") or {}
        if cpu.get("wall_s") and cpu.get("cores"):
            shares.append(cpu["other_processes_cpu_s"] / (cpu["wall_s"] * cpu["cores"]))
    if not shares or max(shares) < 0.10:
        return []
    return [
        "",
        f"> **This run shared the machine with other work:** other processes used up to "
        f"{max(shares):.0%} of the CPU while a figure was measured (median "
        f"{sorted(shares)[len(shares) // 2]:.0%}; see `other_processes_cpu_s` under Details). "
        "Both systems suffer from it, but the figures are pessimistic; rerun on a quiet "
        "machine for clean ones.",
    ]


def _load(doc: dict[str, Any], when: str) -> str:
    value = doc.get(f"load_average_{when}")
    return " / ".join(f"{x:.2f}" for x in value) if value else "?"


def _settings_line(s: dict[str, Any]) -> str:
    keys = ("concurrency", "lease_seconds", "repair_interval_seconds")
    return ", ".join(f"{k}={s[k]}" for k in keys if k in s) or "defaults"
