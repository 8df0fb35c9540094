"""Traces on a real OTLP receiver: Jaeger v2 (built from the Go module proxy) receives the
spans of a `ferryman dev` whose only tracing setting is OTEL_EXPORTER_OTLP_ENDPOINT, and
its query API returns the tree this test checks.

The workload (tests/apps/traced_app.py): an event sent to POST /e with a ``traceparent``
starts ``checkout``, whose first ``charge`` attempt fails and is retried, which sleeps,
sends an event from inside its ``ship`` step (that event starts a ``shipping`` run) and
waits for ``traced.paid``. Each of those is a separate pass of the run.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from opentelemetry.sdk.trace import TracerProvider

import ferryman
from ferryman_worker.common.tracing import root_ids
from ferryman_worker.dev.embedded import free_port
from tests.monitoring.tools import ROOT, jaeger

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]  # a cold Jaeger build

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def jaeger_config(otlp_port: int, query_port: int) -> dict[str, Any]:
    """Jaeger v2 all-in-one, in memory, every port on loopback and free."""
    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["jaeger_storage_exporter"],
                }
            },
            "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "warn"}},
        },
        "extensions": {
            "jaeger_storage": {"backends": {"memory": {"memory": {"max_traces": 1000}}}},
            "jaeger_query": {
                "storage": {"traces": "memory"},
                "http": {"endpoint": f"127.0.0.1:{query_port}"},
                "grpc": {"endpoint": f"127.0.0.1:{free_port()}"},
            },
        },
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": f"127.0.0.1:{otlp_port}"}}}},
        "processors": {"batch": {"timeout": "200ms"}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "memory"}},
    }


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def post(url: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.loads(r.read())


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def traced_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A Jaeger and a `ferryman dev` exporting to it, shared by this module's tests (each
    sends its own events); yields (dev URL, Jaeger query URL)."""
    tmp_path = tmp_path_factory.mktemp("traces")
    binary = jaeger()
    otlp_port, query_port, dev_port = free_port(), free_port(), free_port()
    (tmp_path / "jaeger.yaml").write_text(yaml.safe_dump(jaeger_config(otlp_port, query_port)))
    jaeger_log = (tmp_path / "jaeger.log").open("wb")
    receiver = subprocess.Popen(
        [binary, "--config", str(tmp_path / "jaeger.yaml")],
        stdout=jaeger_log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
        "PYTHONUNBUFFERED": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # export within the test's patience
    }
    dev_log = (tmp_path / "dev.log").open("wb")
    dev = subprocess.Popen(
        [sys.executable, "-m", "ferryman_worker.cli", "dev", "-m", "tests.apps.traced_app",
         "--port", str(dev_port), "--no-reload"],
        cwd=tmp_path, env=env, stdout=dev_log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    query = f"http://127.0.0.1:{query_port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert receiver.poll() is None, (tmp_path / "jaeger.log").read_text()[-3000:]
            assert dev.poll() is None, (tmp_path / "dev.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "dev.log").read_text()[-3000:]
            if "hosting 6 functions" in (tmp_path / "dev.log").read_text(errors="replace"):
                try:
                    get(f"{query}/api/services")
                    break
                except (urllib.error.URLError, ConnectionError):
                    pass
            time.sleep(0.5)
        yield f"http://127.0.0.1:{dev_port}", query
    finally:
        stop(dev)
        stop(receiver)


def run_of(dev: str, event_id: str, status: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = get(f"{dev}/v1/events/{event_id}/runs")["data"]
        if runs and runs[0]["status"] == status:
            return runs[0]
        time.sleep(0.3)
    raise AssertionError(f"the run of event {event_id} never became {status}: {runs}")


def trace_spans(query: str, trace_id: str, names: set[str], timeout: float = 30) -> list[Any]:
    """The trace's spans, once every name in ``names`` is among them."""
    deadline = time.monotonic() + timeout
    spans: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            spans = get(f"{query}/api/traces/{trace_id}")["data"][0]["spans"]
        except urllib.error.HTTPError as exc:
            if exc.code != 404:  # 404: nothing of the trace has arrived yet
                raise
        if names <= {s["operationName"] for s in spans}:
            return spans
        time.sleep(0.5)
    got = sorted(s["operationName"] for s in spans)
    raise AssertionError(f"trace {trace_id}: expected {sorted(names)}, got {got}")


def tags(span: dict[str, Any]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in span["tags"]}


def parent(span: dict[str, Any]) -> str | None:
    refs = [r for r in span["references"] if r["refType"] == "CHILD_OF"]
    return refs[0]["spanID"] if refs else None


def named(spans: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return sorted((s for s in spans if s["operationName"] == name), key=lambda s: s["startTime"])


def test_a_run_is_one_trace_under_the_callers_span(traced_dev: tuple[str, str]) -> None:
    dev, query = traced_dev
    order = post(
        f"{dev}/e/dev",
        {"name": "traced.order", "data": {"order": "o-1"}},
        {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
    )["ids"][0]
    run = run_of(dev, order, "WAITING")
    paid = post(f"{dev}/e/dev", {"name": "traced.paid", "data": {"order": "o-1"}})["ids"][0]
    run_of(dev, order, "COMPLETED")

    spans = trace_spans(
        query,
        CALLER_TRACE,
        {"run traced-checkout", "step charge", "sleep cool-off", "step ship", "wait paid",
         "invoke rating", "run traced-shipping", "step label", "run traced-rate", "step score"},
    )  # fmt: skip
    assert {s["traceID"] for s in spans} == {CALLER_TRACE}  # every pass joined one trace

    [root] = named(spans, "run traced-checkout")
    assert parent(root) == CALLER_SPAN  # the POST's traceparent is the run's parent
    assert root["spanID"] == f"{root_ids(run['run_id'])[1]:016x}"
    assert tags(root)["ferryman.run_id"] == run["run_id"]
    assert tags(root)["ferryman.outcome"] == "completed"

    first, second = named(spans, "step charge")  # the failed attempt, then its retry
    for attempt, span in enumerate((first, second), start=1):
        assert parent(span) == root["spanID"]
        assert tags(span)["ferryman.attempt"] == attempt
        assert tags(span)["ferryman.step_id"] == "charge"
        assert tags(span)["ferryman.function_id"] == "traced-checkout"
        assert tags(span)["ferryman.run_id"] == run["run_id"]
    assert tags(first)["ferryman.outcome"] == "retrying"
    assert tags(first)["otel.status_code"] == "ERROR"
    assert "card processor unavailable" in tags(first)["ferryman.error"]
    assert tags(second)["ferryman.outcome"] == "completed"
    assert "otel.status_code" not in tags(second)

    [sleep] = named(spans, "sleep cool-off")
    assert parent(sleep) == root["spanID"]
    assert sleep["duration"] >= 900_000  # microseconds: the one-second sleep
    assert "ferryman.sleep.until" in tags(sleep)

    [wait] = named(spans, "wait paid")
    assert parent(wait) == root["spanID"]
    assert tags(wait)["ferryman.wait.event"] == "traced.paid"
    assert tags(wait)["ferryman.wait.resolved_by"] == paid

    # fm.send inside the ship step: the run it started is a child of that step's span.
    [ship] = named(spans, "step ship")
    [child_root] = named(spans, "run traced-shipping")
    [label] = named(spans, "step label")
    assert parent(ship) == root["spanID"]
    assert parent(child_root) == ship["spanID"]
    assert parent(label) == child_root["spanID"]
    assert tags(child_root)["ferryman.run_id"] != run["run_id"]

    # step.invoke: the invoked run is a child of the invoking run, its wait a span of it.
    [invoke] = named(spans, "invoke rating")
    [invoked] = named(spans, "run traced-rate")
    assert parent(invoke) == root["spanID"]
    assert parent(invoked) == root["spanID"]
    assert parent(named(spans, "step score")[0]) == invoked["spanID"]

    for span in spans:  # the whole tree hangs from the caller's span
        assert parent(span) in {CALLER_SPAN} | {s["spanID"] for s in spans}, span


def test_a_run_without_a_caller_starts_its_own_trace(traced_dev: tuple[str, str]) -> None:
    dev, query = traced_dev
    refund = post(f"{dev}/e/dev", {"name": "traced.refund", "data": {"order": "o-2"}})["ids"][0]
    run = run_of(dev, refund, "FAILED")
    trace_id, span_id = root_ids(run["run_id"])
    spans = trace_spans(
        query,
        f"{trace_id:032x}",
        {"run traced-refund", "step pay-back", "run traced-refund-failure", "step apology"},
    )
    [root] = named(spans, "run traced-refund")
    assert root["spanID"] == f"{span_id:016x}"
    assert parent(root) is None
    assert tags(root)["ferryman.outcome"] == "failed"
    assert tags(root)["otel.status_code"] == "ERROR"
    [attempt] = named(spans, "step pay-back")
    assert tags(attempt)["ferryman.outcome"] == "failed"
    assert "refunds are closed" in tags(attempt)["ferryman.error"]
    # The on-failure handler's run is a child of the run that failed.
    [handler] = named(spans, "run traced-refund-failure")
    assert parent(handler) == root["spanID"]
    assert parent(named(spans, "step apology")[0]) == handler["spanID"]
    processes = get(f"{query}/api/traces/{trace_id:032x}")["data"][0]["processes"]
    # the default service name, OTEL_SERVICE_NAME being unset
    assert {p["serviceName"] for p in processes.values()} == {"ferryman-worker"}


def test_fm_send_outside_a_worker_carries_the_callers_span(traced_dev: tuple[str, str]) -> None:
    """The SDK over HTTP: the current OpenTelemetry span of the sending program (here,
    this test's) becomes the parent of the run the event starts."""
    dev, query = traced_dev
    client = ferryman.Ferryman(app_id="caller", event_api=dev, event_key="dev")
    with TracerProvider().get_tracer("test").start_as_current_span("caller") as caller:
        [event] = asyncio.run(client.send({"name": "traced.shipping", "data": {"order": "o-3"}}))
    run_of(dev, event, "COMPLETED")
    context = caller.get_span_context()
    spans = trace_spans(query, f"{context.trace_id:032x}", {"run traced-shipping", "step label"})
    [root] = named(spans, "run traced-shipping")
    assert parent(root) == f"{context.span_id:016x}"


def test_a_flow_controlled_run_keeps_the_callers_trace(traced_dev: tuple[str, str]) -> None:
    dev, query = traced_dev
    trace, span = "5bf92f3577b34da6a3ce929d0e0e4737", "10f067aa0ba902b8"
    event = post(
        f"{dev}/e/dev",
        {"name": "traced.limited", "data": {"account": "acme"}},
        {"traceparent": f"00-{trace}-{span}-01"},
    )["ids"][0]
    run_of(dev, event, "COMPLETED")
    spans = trace_spans(query, trace, {"run traced-limited", "step book"})
    [root] = named(spans, "run traced-limited")
    assert parent(root) == span  # through the admission stage, the POST's span is the parent
    assert parent(named(spans, "step book")[0]) == root["spanID"]
