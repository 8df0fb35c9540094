"""The replay engine: run a function against its history, executing new steps eagerly.

One :class:`Execution` is one pass over a run. Steps found in the memo return their
recorded result at once; the first new ``step.run`` executes now, is committed through the
:class:`StepStore`, and the function simply continues to the next step in-process. A pass
ends when the function returns or raises, or when it must leave the worker (a sleep, a
retry backoff): then :class:`_Suspend` unwinds the user's code, steps already executing in
parallel branches finish and are committed, and nothing new starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import random
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ferryman._config import FunctionConfig
from ferryman._events import Event
from ferryman._runtime import NewStep, StepRecord, StepStore, WaitResult
from ferryman.errors import (
    LimitExceededError,
    NonDeterminismError,
    NonRetriableError,
    RetryAfterError,
    StepError,
    _Suspend,
    describe,
)

MAX_STEPS = 1000
MAX_STEP_OUTPUT = 4 * 1024 * 1024
MAX_RUN_STATE = 32 * 1024 * 1024
MAX_SLEEP = timedelta(days=366)
_NO_SCOPE = contextlib.nullcontext()  # reusable: around_step's stand-in when unset


@dataclass
class Outcome:
    """How a pass over a run ended."""

    status: str  # COMPLETED FAILED SUSPENDED RETRY
    output: Any = None
    output_json: str | None = None
    error: dict[str, Any] | None = None
    retry_at: datetime | None = None


@dataclass
class Limits:
    max_steps: int = MAX_STEPS
    max_step_output: int = MAX_STEP_OUTPUT
    max_run_state: int = MAX_RUN_STATE


def to_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise NonRetriableError(
            f"{what} is not JSON-serializable ({exc}); return dicts, lists, strings, "
            "numbers, booleans or None"
        ) from None


def retry_time(
    exc: BaseException, attempt: int, config: FunctionConfig, now: datetime, rand: float
) -> datetime:
    """When the next attempt may start: RetryAfterError's wish, else the backoff."""
    if isinstance(exc, RetryAfterError):
        wish = exc.retry_after
        if isinstance(wish, datetime):
            return max(wish, now)
        from ferryman._durations import parse_duration

        return now + parse_duration(wish, what="retry_after")
    return now + config.backoff.delay(attempt, rand)


@dataclass
class Execution:
    """One pass of one run over its history."""

    config: FunctionConfig
    handler: Callable[..., Awaitable[Any]]
    store: StepStore
    run_id: str
    events: list[Event]
    history: list[StepRecord]
    attempt: int = 0
    limits: Limits = field(default_factory=Limits)
    rand: Callable[[], float] = random.random
    # Entered around each step attempt's code (the worker's tracing makes the attempt's
    # span current there); None: nothing is.
    around_step: Callable[[NewStep], AbstractContextManager[Any]] | None = None

    def __post_init__(self) -> None:
        self.memo: dict[str, StepRecord] = {s.id: s for s in self.history}
        self.by_position: dict[int, str] = {s.position: s.id for s in self.history}
        self.strict_order = not any(s.parallel for s in self.history)
        self.state_size = sum(len(to_json(s.output, "step output")) for s in self.history)
        self.state_size += sum(len(to_json(e.data, "event")) for e in self.events)
        self._counts: dict[str, int] = {}
        self._position = 0
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.suspended = False
        self.fatal: BaseException | None = None
        self.encountered: set[str] = set()
        self.new_steps = 0

    # -- identity -----------------------------------------------------------------------

    def claim(self, step_id: str) -> tuple[str, int]:
        """The unique id (``id``, ``id:1``, ...) and position of the next step call."""
        if not isinstance(step_id, str) or not step_id:
            raise NonRetriableError("a step id must be a non-empty string")
        n = self._counts.get(step_id, 0)
        self._counts[step_id] = n + 1
        unique = step_id if n == 0 else f"{step_id}:{n}"
        self.encountered.add(unique)
        position = self._position
        self._position += 1
        return unique, position

    def check_new(self, unique: str, position: int) -> None:
        """A step history has not seen: fail if history recorded another one here."""
        if self.suspended:
            raise _Suspend()
        recorded = self.by_position.get(position)
        if self.strict_order and recorded is not None and recorded != unique:
            self._fatal(
                NonDeterminismError(
                    f"replay of run {self.run_id} met step {unique!r} at position {position}, "
                    f"where history recorded step {recorded!r}; the function's code changed "
                    "under a run in flight, or code outside steps is not deterministic"
                )
            )
        if len(self.memo) + self.new_steps >= self.limits.max_steps:
            self._fatal(
                LimitExceededError(
                    f"run {self.run_id} reached the limit of {self.limits.max_steps} steps per run"
                )
            )

    def _fatal(self, exc: BaseException) -> None:
        """Raise ``exc`` and remember it: a user's ``except Exception`` cannot hide it."""
        self.fatal = self.fatal or exc
        raise exc

    def _unreplayed(self) -> NonDeterminismError | None:
        """History steps this pass never met: the code no longer has them."""
        missing = sorted(set(self.memo) - self.encountered)
        if not missing:
            return None
        return NonDeterminismError(
            f"run {self.run_id} finished without meeting step(s) {', '.join(missing)} that "
            "history recorded; the function's code changed under a run in flight"
        )

    # -- executing ----------------------------------------------------------------------

    def _begin(self) -> bool:
        parallel = self._inflight > 0
        self._inflight += 1
        self._idle.clear()
        self.new_steps += 1
        return parallel

    def _end(self) -> None:
        self._inflight -= 1
        if self._inflight == 0:
            self._idle.set()

    def _record_output(self, unique: str, value: Any) -> tuple[Any, str]:
        encoded = to_json(value, f"the output of step {unique!r}")
        if len(encoded) > self.limits.max_step_output:
            raise LimitExceededError(
                f"the output of step {unique!r} is {len(encoded)} bytes; the step output "
                f"limit is {self.limits.max_step_output} bytes; store large data elsewhere "
                "and return a reference"
            )
        self.state_size += len(encoded)
        if self.state_size > self.limits.max_run_state:
            raise LimitExceededError(
                f"run {self.run_id} state is {self.state_size} bytes, over the run state "
                f"limit of {self.limits.max_run_state} bytes"
            )
        return json.loads(encoded), encoded

    def _checked_output(self, unique: str, value: Any) -> tuple[Any, str]:
        try:
            return self._record_output(unique, value)
        except LimitExceededError as exc:
            self._fatal(exc)
            raise

    async def run_step(
        self,
        step_id: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        *,
        op: str = "run",
        retries: int | None = None,
    ) -> Any:
        unique, position = self.claim(step_id)
        record = self.memo.get(unique)
        attempt = 0
        if record is not None:
            if record.status == "COMPLETED":
                return record.output
            if record.status == "FAILED":
                err = record.error or {}
                raise StepError(
                    unique, err.get("name", "Error"), err.get("message", ""), err.get("stack")
                )
            attempt = record.attempts  # RETRYING: the next attempt
            if self.suspended:
                raise _Suspend()
        else:
            self.check_new(unique, position)
        step = NewStep(unique, step_id, position, op, self._begin(), attempt)
        try:
            try:
                with _NO_SCOPE if self.around_step is None else self.around_step(step):
                    value = fn(*args)
                    if inspect.isawaitable(value):
                        value = await value
                output, encoded = self._checked_output(unique, value)
            except (NonDeterminismError, LimitExceededError):
                raise
            except Exception as exc:
                return await self._step_failed(step, exc, retries)
            await self.store.complete_step(step, output, encoded)
            return output
        finally:
            self._end()

    async def _step_failed(self, step: NewStep, exc: Exception, retries: int | None) -> Any:
        max_attempts = (self.config.retries if retries is None else retries) + 1
        error = describe(exc)
        step.extra["max_attempts"] = max_attempts  # for the store's logs and metrics
        if isinstance(exc, NonRetriableError) or step.attempt + 1 >= max_attempts:
            await self.store.fail_step(step, error)
            raise StepError(step.id, error["name"], error["message"], error["stack"]) from exc
        at = retry_time(exc, step.attempt, self.config, self.store.now(), self.rand())
        await self.store.retry_step(step, error, at)
        self.suspended = True
        raise _Suspend()

    async def sleep_until(self, step_id: str, until: datetime) -> None:
        unique, position = self.claim(step_id)
        record = self.memo.get(unique)
        if record is not None:
            if record.status == "COMPLETED":
                return
            if record.wake_at is not None and record.wake_at <= self.store.now():
                await self.store.wake_step(record)
                record.status = "COMPLETED"
                return
            self.suspended = True
            raise _Suspend()
        self.check_new(unique, position)
        now = self.store.now()
        if until.tzinfo is None:
            raise NonRetriableError(
                f"sleep_until({step_id!r}) got a naive datetime; give it a time zone"
            )
        if until - now > MAX_SLEEP:
            raise NonRetriableError(f"step {step_id!r} sleeps past the limit of one year")
        step = NewStep(
            unique, step_id, position, "sleep", self._begin(), 0, {"until": until.isoformat()}
        )
        try:
            if until <= now:
                await self.store.complete_step(step, None, "null")
                return
            await self.store.sleep_step(step, until)
        finally:
            self._end()
        self.suspended = True
        raise _Suspend()

    async def wait(
        self,
        step_id: str,
        op: str,
        start: Callable[[NewStep], Awaitable[None]],
        interpret: Callable[[WaitResult], tuple[Any, dict[str, Any] | None]],
    ) -> Any:
        """A step that leaves the worker until something else resolves it.

        ``start`` records the wait; ``interpret`` turns the resolution into the step's
        ``(output, error)``. An error fails the step and raises StepError in the caller.
        """
        unique, position = self.claim(step_id)
        record = self.memo.get(unique)
        if record is None:
            self.check_new(unique, position)
            step = NewStep(unique, step_id, position, op, self._begin(), 0)
            try:
                await start(step)
            finally:
                self._end()
            self.suspended = True
            raise _Suspend()
        if record.status == "COMPLETED":
            return record.output
        if record.status == "FAILED":
            err = record.error or {}
            raise StepError(unique, err.get("name", "Error"), err.get("message", ""))
        result = await self.store.check_wait(record)
        if result.status == "pending":
            self.suspended = True
            raise _Suspend()
        output, error = interpret(result)
        encoded = to_json(output, f"the result of step {unique!r}")
        await self.store.resolve_step(record, output, encoded, error)
        if error is not None:
            record.status, record.error = "FAILED", error
            raise StepError(unique, error.get("name", "Error"), error.get("message", ""))
        record.status, record.output = "COMPLETED", output
        return output

    # -- the pass -----------------------------------------------------------------------

    async def execute(self, ctx: Any) -> Outcome:
        """Run the function once over history; return how this pass ended."""
        outcome = await self._pass(ctx)
        if self.fatal is not None:
            return Outcome("FAILED", error=describe(self.fatal))
        if outcome.status == "COMPLETED":
            missing = self._unreplayed()
            if missing is not None:
                return Outcome("FAILED", error=describe(missing))
        return outcome

    async def _pass(self, ctx: Any) -> Outcome:
        try:
            value = await self.handler(ctx)
        except _Suspend:
            await self._idle.wait()
            return Outcome("SUSPENDED")
        except (NonRetriableError, StepError, NonDeterminismError) as exc:
            await self._idle.wait()
            return Outcome("FAILED", error=describe(exc))
        except Exception as exc:
            await self._idle.wait()
            if self.suspended:
                return Outcome("SUSPENDED")
            error = describe(exc)
            if self.attempt + 1 >= self.config.retries + 1:
                return Outcome("FAILED", error=error)
            at = retry_time(exc, self.attempt, self.config, self.store.now(), self.rand())
            return Outcome("RETRY", error=error, retry_at=at)
        except BaseException:
            # The runtime stopped this pass (cancelled, lease lost, store down): branches
            # still running in a gather must not start new steps.
            self.suspended = True
            raise
        await self._idle.wait()
        if self.suspended:  # a branch suspended but the function swallowed it
            return Outcome("SUSPENDED")
        try:
            output, encoded = self._record_output("(function result)", value)
        except NonRetriableError as exc:
            return Outcome("FAILED", error=describe(exc))
        return Outcome("COMPLETED", output=output, output_json=encoded)
