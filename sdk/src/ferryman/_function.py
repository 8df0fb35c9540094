"""A registered function: its handler, validated configuration and compiled expressions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ferryman._config import FunctionConfig
from ferryman._events import Event
from ferryman._expressions import Expression
from ferryman.errors import InvalidFunctionError

Handler = Callable[..., Awaitable[Any]]


@dataclass
class Function:
    """A durable function as the engine sees it."""

    app_id: str
    config: FunctionConfig
    handler: Handler
    on_failure: Handler | None = None
    is_failure_handler: bool = False
    filters: dict[str, Expression] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"function {self.config.id!r}"
        for trigger in self.config.event_triggers:
            if trigger.if_:
                self.filters[trigger.event] = Expression(
                    trigger.if_, where=f"{where}, trigger {trigger.event!r}"
                )
        # Every other expression is compiled now too, so a typo fails at start-up.
        for cancel in self.config.cancel_on:
            if cancel.if_:
                Expression(cancel.if_, where=f"{where}, cancel_on {cancel.event!r}")
            if cancel.match and not cancel.match.startswith("data."):
                raise InvalidFunctionError(
                    f"{where}, cancel_on {cancel.event!r}: match={cancel.match!r} must name a "
                    "field of the event data, like 'data.bookingId'"
                )
        if self.config.idempotency:
            Expression(self.config.idempotency, where=f"{where}, idempotency")
        c = self.config
        for n, limit in enumerate(c.concurrency):
            if limit.key:
                Expression(limit.key, where=f"{where}, concurrency[{n}] key")
        for name, option in (
            ("throttle", c.throttle), ("rate_limit", c.rate_limit), ("debounce", c.debounce),
            ("batch_events", c.batch_events), ("singleton", c.singleton),
        ):  # fmt: skip
            key = getattr(option, "key", None)
            if key:
                Expression(key, where=f"{where}, {name} key")
        if c.priority:
            Expression(c.priority.run, where=f"{where}, priority")

    @property
    def id(self) -> str:
        """The fully qualified id: ``{app_id}-{function id}``."""
        return f"{self.app_id}-{self.config.id}"

    @property
    def name(self) -> str:
        return self.config.name or self.config.id

    def accepts(self, event: Event) -> bool:
        """Whether ``event`` starts a run: a trigger names it and its ``if`` holds."""
        for trigger in self.config.event_triggers:
            if trigger.event != event.name:
                continue
            expr = self.filters.get(trigger.event)
            if expr is None or expr.matches({"event": event.model_dump()}):
                return True
        return False

    def validate_event(self, event: Event) -> None:
        """Check ``event`` against the typed model of its trigger, if one is declared."""
        for trigger in self.config.event_triggers:
            if trigger.event == event.name and trigger.schema_ is not None:
                trigger.schema_.from_data(event.data)

    async def __call__(self, ctx: Any) -> Any:
        return await self.handler(ctx)
