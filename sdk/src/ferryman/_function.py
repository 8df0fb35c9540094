"""A registered function: its handler, validated configuration and compiled expressions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ferryman._config import FunctionConfig
from ferryman._events import Event
from ferryman._expressions import Expression

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
        for trigger in self.config.event_triggers:
            if trigger.if_:
                self.filters[trigger.event] = Expression(
                    trigger.if_, where=f"function {self.config.id!r}, trigger {trigger.event!r}"
                )

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
