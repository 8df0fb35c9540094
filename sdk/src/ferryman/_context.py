"""What a function receives: :class:`Context` and its :class:`Step` tools."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from ferryman._durations import Duration, parse_duration
from ferryman._engine import Execution
from ferryman._events import Event, EventModel, coerce_events, value_at
from ferryman._expressions import Expression
from ferryman._runtime import WaitResult, WaitSpec
from ferryman.errors import NonRetriableError

T = TypeVar("T")


class Step:
    """Durable steps. Each call needs an id unique within the function (repeats get ``:1``...)."""

    def __init__(self, execution: Execution) -> None:
        self._execution = execution

    async def run(
        self, step_id: str, fn: Callable[..., Any], *args: Any, retries: int | None = None
    ) -> Any:
        """Run ``fn(*args)`` once; its JSON result is checkpointed and returned on replay.

        Args:
            step_id: names the step in history and in the console.
            fn: a function or coroutine function.
            *args: passed to ``fn``.
            retries: overrides the function's ``retries`` for this step.

        Raises:
            StepError: the step failed for good (catch it to carry on).
        """
        if retries is not None and not 0 <= retries <= 20:
            raise NonRetriableError(f"step {step_id!r}: retries must be between 0 and 20")
        return await self._execution.run_step(step_id, fn, args, retries=retries)

    async def sleep(self, step_id: str, duration: Duration) -> None:
        """Pause the run for ``duration`` (``"3 days"``, ``"1h30m"``, a ``timedelta``).

        The run leaves the worker while it sleeps and resumes on any worker.
        """
        try:
            delta = parse_duration(duration, what=f"sleep {step_id!r}")
        except ValueError as exc:
            raise NonRetriableError(str(exc)) from None
        await self._execution.sleep_until(step_id, self._execution.store.now() + delta)

    async def sleep_until(self, step_id: str, when: datetime | str) -> None:
        """Pause the run until ``when`` (an aware datetime or ISO 8601 string)."""
        if isinstance(when, str):
            try:
                when = datetime.fromisoformat(when.replace("Z", "+00:00"))
            except ValueError:
                raise NonRetriableError(
                    f"sleep_until({step_id!r}): {when!r} is not an ISO 8601 time"
                ) from None
        await self._execution.sleep_until(step_id, when)

    async def send_event(
        self, step_id: str, events: Event | EventModel | dict[str, Any] | list[Any]
    ) -> list[str]:
        """Send events exactly once per run: a replay returns the ids it sent the first time."""
        batch = coerce_events(events)
        run_id = self._execution.run_id
        store = self._execution.store

        async def send() -> list[str]:
            # Ids derive from the run and step, so a re-executed step is deduplicated.
            seed = f"{run_id}/{step_id}/{self._execution._counts.get(step_id, 1)}"
            stamped = [
                e
                if e.id
                else e.model_copy(
                    update={"id": hashlib.sha256(f"{seed}/{i}".encode()).hexdigest()[:26]}
                )
                for i, e in enumerate(batch)
            ]
            return await store.send_events(stamped)

        result: list[str] = await self._execution.run_step(step_id, send, (), op="send_event")
        return result

    async def wait_for_event(
        self,
        step_id: str,
        *,
        event: str,
        timeout: Duration,
        match: str | None = None,
        if_: str | None = None,
    ) -> Event | None:
        """Pause until a later event named ``event`` satisfies the condition.

        Args:
            step_id: names the step.
            event: the event name to wait for.
            timeout: how long to wait (``"24h"``, a ``timedelta``).
            match: ``"data.bookingId"``: the candidate's value equals the trigger's.
            if_: a CEL expression over ``event`` (the run's trigger) and ``async``
                (the candidate), e.g. ``"async.data.amount >= event.data.amount"``.

        Returns:
            The event, or ``None`` when the timeout passed first. An event sent before
            the wait began does not count.
        """
        execution = self._execution
        try:
            delta = parse_duration(timeout, what=f"wait_for_event {step_id!r} timeout")
        except ValueError as exc:
            raise NonRetriableError(str(exc)) from None
        if match is not None and if_ is not None:
            raise NonRetriableError(f"step {step_id!r}: give match= or if_=, not both")
        if if_ is not None:
            try:
                Expression(if_, where=f"wait_for_event {step_id!r}")
            except ValueError as exc:
                raise NonRetriableError(str(exc)) from None
        trigger = execution.events[0].to_wire() if execution.events else {}
        path = _path(match, step_id) if match is not None else None

        async def start(step: Any) -> None:
            spec = WaitSpec(
                event=event, timeout_at=execution.store.now() + delta, match_path=path,
                match_value=value_at(trigger.get("data", {}), path) if path else None,
                expression=if_, trigger=trigger,
            )  # fmt: skip
            await execution.store.wait_step(step, spec)

        def interpret(result: WaitResult) -> tuple[Any, dict[str, Any] | None]:
            return (result.event if result.status == "event" else None), None

        found = await execution.wait(step_id, "wait", start, interpret)
        return Event.model_validate(found) if found else None

    async def invoke(
        self,
        step_id: str,
        *,
        function: Any,
        data: dict[str, Any] | None = None,
        timeout: Duration | None = None,
    ) -> Any:
        """Run another function and return its result.

        Args:
            step_id: names the step.
            function: the function (as decorated) or its full id (``"app-fn"``).
            data: the invoked run's ``event.data``.
            timeout: give up after this long (default: wait as long as it runs).

        Raises:
            StepError: the invoked run failed, or the timeout passed first.
        """
        execution = self._execution
        function_id = getattr(function, "id", function)
        if not isinstance(function_id, str) or not function_id:
            raise NonRetriableError(f"step {step_id!r}: function= must be a function or its id")
        if data is not None and not isinstance(data, dict):
            raise NonRetriableError(f"step {step_id!r}: data= must be a dict")
        try:
            delta = parse_duration(timeout, what="invoke timeout") if timeout is not None else None
        except ValueError as exc:
            raise NonRetriableError(str(exc)) from None

        async def start(step: Any) -> None:
            at = execution.store.now() + delta if delta is not None else None
            await execution.store.invoke_step(step, function_id, dict(data or {}), at)

        def interpret(result: WaitResult) -> tuple[Any, dict[str, Any] | None]:
            if result.status == "timeout":
                return None, {
                    "name": "InvokeTimeout",
                    "message": f"{function_id} did not finish within {timeout}",
                }
            finished = (result.event or {}).get("data", {})
            if finished.get("error"):
                return None, finished["error"]
            return finished.get("output"), None

        return await execution.wait(step_id, "invoke", start, interpret)


def _path(match: str, step_id: str) -> list[str]:
    """``"data.bookingId"`` -> ``["bookingId"]`` (a path within ``data``)."""
    parts = match.split(".")
    if len(parts) < 2 or parts[0] != "data" or not all(parts[1:]):
        raise NonRetriableError(
            f"step {step_id!r}: match={match!r} must name a field of the event data, "
            "like 'data.bookingId'"
        )
    return parts[1:]


class Context:
    """The run a function is executing: its event(s), ids and steps."""

    def __init__(self, execution: Execution, logger: logging.Logger | None = None) -> None:
        self._execution = execution
        self.step = Step(execution)
        self.logger = logger or logging.getLogger("ferryman.function")

    @property
    def event(self) -> Event:
        """The event that started the run (the first one, for a batch)."""
        return self._execution.events[0]

    @property
    def events(self) -> list[Event]:
        """All events of the run: one, or the batch for ``batch_events`` functions."""
        return list(self._execution.events)

    @property
    def run_id(self) -> str:
        return self._execution.run_id

    @property
    def attempt(self) -> int:
        """Zero-based attempt number of the function (not of a step)."""
        return self._execution.attempt
