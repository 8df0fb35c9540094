"""Metrics: each process exports its own families, bounded labels, a docs page for each."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, generate_latest

from ferryman_worker.common import metrics
from ferryman_worker.gateway.devmetrics import merge, render

ROOT = Path(__file__).resolve().parents[2]


def families(registry: CollectorRegistry) -> set[str]:
    return {m.name for m in registry.collect() if m.name.startswith("ferryman_")}


def test_gateway_and_worker_export_only_what_they_own() -> None:
    worker, gateway = families(metrics.WORKER), families(metrics.GATEWAY)
    assert "ferryman_run_passes" in worker
    assert "ferryman_run_passes" not in gateway
    assert "ferryman_events_received" in gateway
    assert "ferryman_events_received" not in worker
    # Endings are counted where they happen: API cancellations in the gateway.
    assert worker & gateway == {"ferryman_runs_finished", "ferryman_run_duration_seconds"}


def test_nothing_is_left_on_the_global_registry() -> None:
    from prometheus_client import REGISTRY

    assert not [m.name for m in REGISTRY.collect() if m.name.startswith("ferryman_")]


def test_step_labels_are_bounded_per_function() -> None:
    assert metrics.step_label("bounded-fn", "fetch:3") == "fetch"
    labels = {metrics.step_label("bounded-fn", f"item-{i}") for i in range(500)}
    assert len(labels) == metrics.MAX_STEP_LABELS
    assert metrics.OTHER_STEP in labels
    assert metrics.step_label("bounded-fn", "fetch") == "fetch", "known ids keep their label"
    assert metrics.step_label("other-fn", "item-1") == "item-1", "the cap is per function"


def test_dev_merges_expositions_and_sums_shared_series() -> None:
    a, b = CollectorRegistry(), CollectorRegistry()
    for registry, value in ((a, 2), (b, 3)):
        c = Counter("ferryman_x_total", "x", ["status"], registry=registry)
        c.labels("CANCELLED").inc(value)
    only_b = Counter("ferryman_y_total", "y", registry=b)
    only_b.inc()
    text = render(merge([generate_latest(a).decode(), generate_latest(b).decode()])).decode()
    assert 'ferryman_x_total{status="CANCELLED"} 5.0' in text
    assert "ferryman_y_total 1.0" in text
    assert text.count("# TYPE ferryman_x_total counter") == 1


def test_every_family_is_documented() -> None:
    doc = (ROOT / "docs" / "metrics.md").read_text()
    documented = set(re.findall(r"^\| `(ferryman_[a-z_]+)`", doc, re.M))
    exported = set()
    for registry in (metrics.WORKER, metrics.GATEWAY):
        for m in registry.collect():
            if m.name.startswith("ferryman_"):
                exported.add(m.name + ("_total" if m.type == "counter" else ""))
    assert exported - documented == set(), "add these to docs/metrics.md"
    from ferryman_operator import metrics as operator_metrics
    from ferryman_worker.gateway.engine_gauges import EngineGauges, Snapshot

    gauges = EngineGauges("postgresql://unused")
    gauges.snapshot = Snapshot()
    exported |= {m.name for m in gauges.collect()}

    for m in operator_metrics.REGISTRY.collect():
        if m.name.startswith("ferryman_"):
            exported.add(m.name + ("_total" if m.type == "counter" else ""))
    assert documented - exported == set(), "docs/metrics.md lists families nobody exports"
    assert exported - documented == set(), "add these to docs/metrics.md"


def test_engine_gauges_list_every_state_of_every_function_they_were_given() -> None:
    from ferryman_worker.gateway.engine_gauges import EngineGauges, Snapshot

    gauges = EngineGauges("postgresql://unused")
    assert [m.samples[0].value for m in gauges.collect()] == [0], "not leader: only that"
    gauges.snapshot = Snapshot(runs={("f", "QUEUED"): 0, ("f", "SLEEPING"): 3})
    by_name = {m.name: m for m in gauges.collect()}
    samples = {tuple(s.labels.values()): s.value for s in by_name["ferryman_runs_by_state"].samples}
    assert samples == {("f", "QUEUED"): 0, ("f", "SLEEPING"): 3}
