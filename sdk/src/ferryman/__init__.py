"""Ferryman: durable, event-driven functions for Kubernetes.

::

    fm = ferryman.Ferryman(app_id="bookings")

    @fm.function(id="process-booking", trigger=ferryman.on_event("booking.created"))
    async def process_booking(ctx: ferryman.Context) -> dict:
        booking = await ctx.step.run("validate", validate, ctx.event.data["bookingId"])
        await ctx.step.sleep("cool-off", "1h")
        return {"status": "confirmed"}
"""

from ferryman._client import Ferryman
from ferryman._config import (
    Backoff,
    BatchEvents,
    Cancel,
    Concurrency,
    CronTrigger,
    Debounce,
    EventTrigger,
    FunctionConfig,
    Priority,
    RateLimit,
    Singleton,
    Throttle,
    Timeouts,
    on_cron,
    on_event,
)
from ferryman._context import Context, Step
from ferryman._events import Event, EventModel
from ferryman._function import Function
from ferryman.errors import (
    EventValidationError,
    FerrymanError,
    InvalidFunctionError,
    LimitExceededError,
    NonDeterminismError,
    NonRetriableError,
    RetryAfterError,
    StepError,
)

__all__ = [
    "Backoff",
    "BatchEvents",
    "Cancel",
    "Concurrency",
    "Context",
    "CronTrigger",
    "Debounce",
    "Event",
    "EventModel",
    "EventTrigger",
    "EventValidationError",
    "Ferryman",
    "FerrymanError",
    "Function",
    "FunctionConfig",
    "InvalidFunctionError",
    "LimitExceededError",
    "NonDeterminismError",
    "NonRetriableError",
    "Priority",
    "RateLimit",
    "RetryAfterError",
    "Singleton",
    "Step",
    "StepError",
    "Throttle",
    "Timeouts",
    "on_cron",
    "on_event",
]
