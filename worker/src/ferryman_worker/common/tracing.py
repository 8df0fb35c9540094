"""Traces: a run is one trace, each step attempt a span (OpenTelemetry over OTLP).

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is
set; the OpenTelemetry SDK then reads every other standard variable itself (service name,
resource attributes, sampler, batch delays, headers, timeouts). Off, every hook elsewhere is
one ``is None`` check and nothing here is imported.

A run advances in passes, possibly on different workers days apart, so no span object
outlives a pass. The run's root span has ids derived from the run id: every pass parents its
spans to that span context without asking anyone, and the root span itself is exported
when the run ends, backdated to the run's creation (docs/architecture.md, "Traces"). Its
parent, the ``traceparent`` that came with the trigger event (from ``POST /e`` or from
``fm.send`` in another run's step), is kept in ``runs.traceparent``.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer
    from psycopg_pool import AsyncConnectionPool

    from ferryman._runtime import NewStep, StepRecord

TRACEPARENT = "traceparent"
ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")

tracer: Tracer | None = None  # set by setup() when tracing is configured
_provider: TracerProvider | None = None
# The ids the next span must have: a run's root span is created with ids chosen in advance.
_forced: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "ferryman_forced_ids", default=None
)


class TracingError(ValueError):
    """An OTEL_* setting Ferryman cannot honour; the message names it."""


def configured() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if exporter == "none":
        return False
    if exporter != "otlp":
        raise TracingError(
            f"OTEL_TRACES_EXPORTER={exporter!r}: Ferryman exports traces over OTLP only; "
            "unset it, or set it to 'otlp' or 'none'"
        )
    return any(os.environ.get(name) for name in ENDPOINTS)


def _exporter() -> Any:
    protocol = next((os.environ[p] for p in PROTOCOLS if os.environ.get(p)), "http/protobuf")
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        return GrpcSpanExporter()
    raise TracingError(
        f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: use 'http/protobuf' (the default) or 'grpc'"
    )


def setup(service: str) -> bool:
    """Start exporting if the environment asks for it (once per process); ``service`` is
    the service name unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES give one."""
    global tracer, _provider
    if tracer is not None or not configured():
        return tracer is not None
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service}))
    # The sampler comes from OTEL_TRACES_SAMPLER(_ARG), read by TracerProvider itself.
    _provider = TracerProvider(resource=resource, id_generator=_run_ids())
    _provider.add_span_processor(BatchSpanProcessor(_exporter()))
    trace.set_tracer_provider(_provider)  # user code's spans nest under the step's span
    tracer = _provider.get_tracer("ferryman")
    return True


def flush(timeout_seconds: float = 5.0) -> None:
    """Export what is buffered (a worker stopping must not lose its last spans)."""
    if _provider is not None:
        _provider.force_flush(int(timeout_seconds * 1000))


def _run_ids() -> Any:
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class RunIds(RandomIdGenerator):
        """Random ids, except for a run's root span, whose ids are known in advance."""

        def generate_trace_id(self) -> int:
            forced = _forced.get()
            return forced[0] if forced else super().generate_trace_id()

        def generate_span_id(self) -> int:
            forced = _forced.get()
            return forced[1] if forced else super().generate_span_id()

    return RunIds()


def root_ids(run_id: str) -> tuple[int, int]:
    """The trace id (used when the run has no parent) and span id of a run's root span."""
    digest = hashlib.blake2b(run_id.encode(), digest_size=24).digest()
    return int.from_bytes(digest[:16], "big") or 1, int.from_bytes(digest[16:], "big") or 1


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span (a step's, inside a run), if any."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get(TRACEPARENT)


def valid_traceparent(value: str | None) -> str | None:
    """``value`` if it is a W3C traceparent; otherwise None (the spec says to ignore it)."""
    if not value or len(value) > 128:
        return None
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    context = TraceContextTextMapPropagator().extract({TRACEPARENT: value})
    return value if trace.get_current_span(context).get_span_context().is_valid else None


def _ns(at: datetime) -> int:
    return int(at.timestamp() * 1e9)


class RunTrace:
    """One pass's view of a run's trace: the root span context and the open step spans."""

    def __init__(
        self, run_id: str, function_id: str, parent: str | None, created_at: datetime
    ) -> None:
        from opentelemetry import trace
        from opentelemetry.context import Context
        from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        assert tracer is not None
        assert _provider is not None
        self.tracer = tracer
        self.run_id, self.function_id, self.created_at = run_id, function_id, created_at
        self.parent = TraceContextTextMapPropagator().extract({TRACEPARENT: parent or ""})
        trace_id, span_id = root_ids(run_id)
        parent_span = trace.get_current_span(self.parent).get_span_context()
        if parent_span.is_valid:
            trace_id = parent_span.trace_id
        else:
            self.parent = Context()
        self.ids = (trace_id, span_id)
        # The decision the root span will get when it is made: standard samplers decide
        # from the parent and the trace id alone, so every pass agrees.
        decision = _provider.sampler.should_sample(self.parent, trace_id, self.name).decision
        sampled: bool = decision.is_sampled()  # type: ignore[no-untyped-call]
        self.flags = TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT
        root = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(self.flags))
        self.context = trace.set_span_in_context(NonRecordingSpan(root))
        self.open: dict[str, Span] = {}

    @property
    def name(self) -> str:
        return f"run {self.function_id}"

    def _attributes(self, step_id: str | None = None) -> dict[str, Any]:
        found = {"ferryman.function_id": self.function_id, "ferryman.run_id": self.run_id}
        if step_id is not None:
            found["ferryman.step_id"] = step_id
        return found

    @contextlib.contextmanager
    def step(self, step: NewStep) -> Iterator[None]:
        """Around a step attempt's code: its span is current, so ``fm.send`` and the
        user's own spans inside the step are its children."""
        from opentelemetry import context, trace

        span = self.tracer.start_span(
            f"step {step.name}",
            context=self.context,
            start_time=_ns(step.started_at),
            attributes={
                **self._attributes(step.id),
                "ferryman.step.op": step.op,
                "ferryman.attempt": step.attempt + 1,
            },
        )
        self.open[step.id] = span
        token = context.attach(trace.set_span_in_context(span, self.context))
        try:
            yield
        except Exception as exc:
            span.record_exception(exc)
            raise
        finally:
            context.detach(token)

    def step_ended(self, step: NewStep, outcome: str, error: dict[str, Any] | None = None) -> None:
        """The attempt's checkpoint is written: end its span with how it ended."""
        span = self.open.pop(step.id, None)
        if span is None:
            return
        span.set_attribute("ferryman.outcome", outcome)
        if error is not None:
            _failed(span, error)
        span.end()

    def sleep(self, step: NewStep, until: datetime) -> None:
        """A sleep: a span from when it began to its wake time (exported now)."""
        span = self.tracer.start_span(
            f"sleep {step.name}",
            context=self.context,
            start_time=_ns(step.started_at),
            attributes={**self._attributes(step.id), "ferryman.sleep.until": until.isoformat()},
        )
        span.end(end_time=max(_ns(until), _ns(step.started_at)))

    async def waited(
        self, pool: AsyncConnectionPool, record: StepRecord, wait_id: str, error: Any
    ) -> None:
        """A wait (for an event, or an invoked run) resolved: a span from when it began to
        when it was resolved, saying by what."""
        try:
            async with pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT s.started_at, w.event_name, w.event_id, w.resolved_at, w.kind "
                    "FROM steps s LEFT JOIN waits w ON w.id = %s "
                    "WHERE s.run_id = %s AND s.step_id = %s",
                    (wait_id, self.run_id, record.id),
                )
                row = await cur.fetchone()
        except Exception:  # a span is not worth failing the run's pass for
            return
        if row is None:
            return
        started, event_name, event_id, resolved, kind = row
        attributes = {**self._attributes(record.id), "ferryman.step.op": record.op}
        if event_name is not None:
            attributes["ferryman.wait.event"] = event_name
            attributes["ferryman.wait.resolved_by"] = event_id or "timeout"
        span = self.tracer.start_span(
            f"{'invoke' if kind == 'invoke' else 'wait'} {record.name or record.id}",
            context=self.context,
            start_time=_ns(started),
            attributes=attributes,
        )
        if error is not None:
            _failed(span, error)
        span.end(end_time=_ns(resolved) if resolved is not None else None)

    def finish(self, status: str, error: dict[str, Any] | None) -> None:
        """The run ended: export its root span, from its creation to now."""
        token = _forced.set(self.ids)
        try:
            span = self.tracer.start_span(
                self.name,
                context=self.parent,
                start_time=_ns(self.created_at),
                attributes={**self._attributes(), "ferryman.outcome": status.lower()},
            )
        finally:
            _forced.reset(token)
        if error is not None:
            _failed(span, error)
        span.end()

    @property
    def traceparent(self) -> str:
        """The run's root span as a W3C traceparent."""
        trace_id, span_id = self.ids
        return f"00-{trace_id:032x}-{span_id:016x}-{self.flags:02x}"

    def attach(self) -> contextvars.Token[Any]:
        """Make the run's root span current for the pass: what the run does outside its
        steps (``fm.send``, ``step.invoke``) is its child."""
        from opentelemetry import context

        return context.attach(self.context)

    def close(self, attached: contextvars.Token[Any]) -> None:
        """Undo :meth:`attach`; end the spans of attempts the pass left unfinished (a lost
        lease, a cancel)."""
        from opentelemetry import context

        context.detach(attached)
        for span in self.open.values():
            span.set_attribute("ferryman.outcome", "interrupted")
            span.end()
        self.open.clear()


def _failed(span: Span, error: dict[str, Any]) -> None:
    from opentelemetry.trace import Status, StatusCode

    name, message = error.get("name", "Error"), error.get("message", "")
    span.set_attribute("ferryman.error", f"{name}: {message}".rstrip(": "))
    span.set_status(Status(StatusCode.ERROR, f"{name}: {message}"))


async def for_run(pool: AsyncConnectionPool, run_id: str, function_id: str) -> RunTrace | None:
    """The run's trace for this pass (one small read: its parent ``traceparent``)."""
    try:
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT traceparent, created_at FROM runs WHERE id = %s", (run_id,)
            )
            row = await cur.fetchone()
    except Exception:  # the pass itself will meet the outage and retry
        return None
    if row is None:
        return None
    return RunTrace(run_id, function_id, row[0], row[1])
