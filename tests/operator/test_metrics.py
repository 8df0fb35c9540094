"""The operator's metrics: reconciles counted by result and timed; served on its own port."""

from __future__ import annotations

import urllib.request

import pytest

from ferryman_operator import metrics
from ferryman_worker.dev.embedded import free_port


def value(name: str, **labels: str) -> float:
    got = metrics.REGISTRY.get_sample_value(name, labels)
    return got or 0.0


def test_a_reconcile_counts_ok_or_error_and_is_timed() -> None:
    ok = value("ferryman_operator_reconciles_total", kind="WorkerPool", result="ok")
    err = value("ferryman_operator_reconciles_total", kind="WorkerPool", result="error")
    timed = value("ferryman_operator_reconcile_seconds_count", kind="WorkerPool")
    with metrics.reconciling("WorkerPool"):
        pass
    with pytest.raises(RuntimeError), metrics.reconciling("WorkerPool"):
        raise RuntimeError("JetStream unreachable")
    assert value("ferryman_operator_reconciles_total", kind="WorkerPool", result="ok") == ok + 1
    assert value("ferryman_operator_reconciles_total", kind="WorkerPool", result="error") == err + 1
    assert value("ferryman_operator_reconcile_seconds_count", kind="WorkerPool") == timed + 2


def test_the_operator_serves_its_registry_only() -> None:
    port = free_port()
    metrics.serve(port, "127.0.0.1")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    assert "ferryman_operator_reconciles_total" in text
    assert "ferryman_runs_finished_total" not in text
