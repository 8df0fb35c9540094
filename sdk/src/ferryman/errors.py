"""Errors a Ferryman function raises or receives.

::

    FerrymanError
    ├── NonRetriableError        raise it: the step (or run) fails now, no more attempts
    ├── RetryAfterError          raise it: retry, but not before the given delay or time
    ├── StepError                received: a step failed for good; catch it to carry on
    ├── NonDeterminismError      replay met a different step than history recorded
    ├── LimitExceededError       a step output, run state or step count is over its limit
    ├── InvalidFunctionError     a function's configuration is wrong (raised at registration)
    └── EventValidationError     an event does not match its declared schema

Internal control-flow signals (suspending a run) derive from ``BaseException`` so that a
user's ``except Exception:`` cannot swallow them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


class FerrymanError(Exception):
    """Base of every error Ferryman raises on purpose."""


class NonRetriableError(FerrymanError):
    """Fail the step (or the run) at once, whatever retries remain."""


class RetryAfterError(FerrymanError):
    """Retry, but not before ``retry_after`` (a delay or a point in time)."""

    def __init__(self, message: str, retry_after: timedelta | datetime | float | str) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StepError(FerrymanError):
    """A step failed for good (retries exhausted or non-retriable).

    The function may catch it and carry on; if it does not, the run fails.
    """

    def __init__(self, step_id: str, name: str, message: str, stack: str | None = None) -> None:
        super().__init__(f"step {step_id!r} failed: {name}: {message}")
        self.step_id = step_id
        self.error_name = name
        self.error_message = message
        self.stack = stack


class NonDeterminismError(FerrymanError):
    """Replay met a different step at a position history already covers."""


class LimitExceededError(NonRetriableError):
    """A size or count limit was exceeded; the message names the limit."""


class InvalidFunctionError(FerrymanError, ValueError):
    """A function definition is invalid; raised when the function is registered."""


class EventValidationError(FerrymanError, ValueError):
    """An event's data does not match the model declared for it."""


class _Suspend(BaseException):
    """Unwinds a run that must leave the worker (sleep, retry backoff, wait)."""


def describe(exc: BaseException) -> dict[str, Any]:
    """The JSON shape of an error as stored and shown: ``{name, message, stack}``."""
    import traceback

    return {
        "name": type(exc).__name__,
        "message": str(exc),
        "stack": "".join(traceback.format_exception(exc))[-8000:],
    }
