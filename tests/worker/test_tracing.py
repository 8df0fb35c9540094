"""Tracing's switches and ids, without a receiver (test_traces.py has the real one)."""

from __future__ import annotations

import pytest

from ferryman_worker.common import tracing

CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_tracing_is_off_without_an_otlp_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in tracing.ENDPOINTS:
        monkeypatch.delenv(name, raising=False)
    assert not tracing.configured()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert tracing.configured()
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not tracing.configured()
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert not tracing.configured()


def test_an_exporter_ferryman_cannot_honour_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(tracing.TracingError, match="OTEL_TRACES_EXPORTER='zipkin'"):
        tracing.configured()
    monkeypatch.delenv("OTEL_TRACES_EXPORTER")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(tracing.TracingError, match="http/protobuf"):
        tracing._exporter()


def test_a_runs_root_ids_are_the_same_on_every_worker() -> None:
    trace_id, span_id = tracing.root_ids("01M8VJ8VXTEJWFQJXX80S00AH0")
    assert (trace_id, span_id) == tracing.root_ids("01M8VJ8VXTEJWFQJXX80S00AH0")
    assert tracing.root_ids("01M8VJ8VXTEJWFQJXX80S00AH1") != (trace_id, span_id)
    assert 0 < trace_id < 2**128
    assert 0 < span_id < 2**64


@pytest.mark.parametrize(
    ("header", "kept"),
    [
        (CALLER, True),
        (None, False),
        ("", False),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", False),  # zero trace id
        ("not a traceparent", False),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", False),  # no flags
    ],
)
def test_only_a_valid_traceparent_is_passed_on(header: str | None, kept: bool) -> None:
    assert tracing.valid_traceparent(header) == (header if kept else None)


def test_with_tracing_off_the_worker_does_not_even_import_opentelemetry() -> None:
    import subprocess
    import sys

    code = (
        "import sys, ferryman_worker.worker, ferryman_worker.gateway.app; "
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
