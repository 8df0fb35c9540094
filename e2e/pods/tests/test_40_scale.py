"""The pool scales from 0 to N pods on backlog and back to 0 when drained; scaling down while
a long step runs never kills it (it runs exactly once)."""

from __future__ import annotations

import time

from kube import Kube, wait_for

from conftest import NAMESPACE, Ledger, completed, run_of, send


def replicas(cluster: Kube, app: str) -> int:
    return int(cluster.get("-n", NAMESPACE, "deploy", f"{app}-workers")["spec"]["replicas"])


def test_scale_up_on_backlog_and_down_without_killing_a_long_step(
    cluster: Kube, gateway: str, app: str, ledger: Ledger
) -> None:
    wait_for("the pool at 0 replicas", lambda: replicas(cluster, app) == 0, timeout=180, interval=1)
    long_run = str(run_of(gateway, send(gateway, "e2e.durable", {"seconds": 75}))["run_id"])
    short = [send(gateway, "e2e.durable", {"seconds": 3}) for _ in range(10)]
    seen: list[int] = []

    def scaled_up() -> bool:
        seen.append(replicas(cluster, app))
        return seen[-1] >= 2

    wait_for("the pool to scale up on its backlog", scaled_up, timeout=120, interval=1)
    short_runs = [str(run_of(gateway, e)["run_id"]) for e in short]
    for run_id in short_runs:
        completed(gateway, run_id, timeout=300)
    peak = max(seen)
    # Drained but for the long step: the pool scales down while the step runs.
    down: list[int] = []

    def scaled_down() -> bool:
        down.append(replicas(cluster, app))
        return down[-1] < peak

    wait_for("a scale-down while the long step runs", scaled_down, timeout=120, interval=1)
    assert ledger.count(long_run, "long:done") == 0, "the long step ended before the scale-down"
    completed(gateway, long_run, timeout=300)
    rows = ledger.rows(long_run)
    assert ledger.count(long_run, "long:start") == 1, rows
    assert ledger.count(long_run, "long:done") == 1, rows
    assert ledger.pods(long_run, "long:start") == ledger.pods(long_run, "long:done"), rows
    for run_id in short_runs:
        assert ledger.count(run_id, "long:start") == 1, ledger.rows(run_id)
    start = time.monotonic()
    wait_for(
        "the pool back at 0 replicas", lambda: replicas(cluster, app) == 0, timeout=180, interval=1
    )
    print(f"peak {peak} replicas; back to 0 {time.monotonic() - start:.0f}s after the last run")
