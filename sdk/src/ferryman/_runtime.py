"""The runtime interface the SDK calls, and the context variable that holds it.

The SDK never talks to NATS or PostgreSQL itself. The worker implements
:class:`StepStore` over PostgreSQL and JetStream; :mod:`ferryman.testing` implements it
in memory. The replay engine only ever calls these methods.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from ferryman._events import Event


@dataclass
class StepRecord:
    """A step as history holds it."""

    id: str
    position: int
    op: str
    status: str  # COMPLETED FAILED SLEEPING RETRYING WAITING
    output: Any = None
    error: dict[str, Any] | None = None
    attempts: int = 0
    wake_at: datetime | None = None
    parallel: bool = False
    name: str | None = None


@dataclass
class NewStep:
    """A step the engine is about to record."""

    id: str
    name: str
    position: int
    op: str
    parallel: bool
    attempt: int  # zero-based attempt number of this execution
    extra: dict[str, Any] = field(default_factory=dict)
    # The engine builds a NewStep just before it executes the step, so this is the
    # attempt's real start (the console's timeline needs it; the end is the write).
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class WaitSpec:
    """What a waiting step waits for.

    ``match_path`` (within the candidate's ``data``) and ``match_value`` (the trigger's
    value there) come from ``match="data.x"``; ``expression`` is a CEL ``if`` over
    ``event`` (the run's trigger) and ``async`` (the candidate).
    """

    event: str
    timeout_at: datetime | None
    match_path: list[str] | None = None
    match_value: Any = None
    expression: str | None = None
    trigger: dict[str, Any] | None = None


@dataclass
class WaitResult:
    """``pending``, ``event`` (with the event as a dict) or ``timeout``."""

    status: str
    event: dict[str, Any] | None = None


class StepStore(Protocol):
    """Where the engine commits checkpoints. Each call is durable when it returns."""

    def now(self) -> datetime: ...

    async def complete_step(self, step: NewStep, output: Any, output_json: str) -> None:
        """Store the step's result (once; a concurrent writer's result wins)."""

    async def fail_step(self, step: NewStep, error: dict[str, Any]) -> None:
        """The step failed for good."""

    async def retry_step(self, step: NewStep, error: dict[str, Any], at: datetime) -> None:
        """The attempt failed; arm the retry for ``at``."""

    async def sleep_step(self, step: NewStep, until: datetime) -> None:
        """Record the sleep and arm its timer."""

    async def wake_step(self, step: StepRecord) -> None:
        """A sleep whose time has come: mark it completed."""

    async def send_events(self, events: list[Event]) -> list[str]:
        """Store and publish events (ids already set, so a resend is deduplicated)."""

    async def wait_step(self, step: NewStep, spec: WaitSpec) -> None:
        """Record a wait for an event (and its timeout timer)."""

    async def invoke_step(
        self, step: NewStep, function_id: str, data: dict[str, Any], timeout_at: datetime | None
    ) -> None:
        """Start a run of ``function_id`` and wait for it to finish."""

    async def check_wait(self, step: StepRecord) -> WaitResult:
        """Whether a waiting step's event came, its time ran out, or it still waits."""

    async def resolve_step(
        self, step: StepRecord, output: Any, output_json: str, error: dict[str, Any] | None
    ) -> None:
        """Complete (or fail, with ``error``) a step that was waiting."""


class Sender(Protocol):
    async def send(self, events: list[Event]) -> list[str]: ...


_current_sender: contextvars.ContextVar[Sender | None] = contextvars.ContextVar(
    "ferryman_sender", default=None
)


def current_sender() -> Sender | None:
    """The in-process event sender, when code runs inside a worker or a test runtime."""
    return _current_sender.get()


def set_sender(sender: Sender | None) -> contextvars.Token[Sender | None]:
    return _current_sender.set(sender)


def reset_sender(token: contextvars.Token[Sender | None]) -> None:
    """Put back the sender that ``set_sender`` replaced."""
    _current_sender.reset(token)
