"""Events: what triggers runs, what steps send, and typed event models."""

from __future__ import annotations

import time
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ferryman.errors import EventValidationError


class Event(BaseModel):
    """An event as a function sees it: ``name``, ``data`` (an object), ``id``, ``ts`` (ms)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    data: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None
    ts: int = Field(default_factory=lambda: int(time.time() * 1000))
    user: dict[str, Any] | None = None

    def parsed(self, model: type[M]) -> M:
        """This event's ``data`` as the typed model ``model``."""
        return model.from_data(self.data)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class EventModel(BaseModel):
    """Declare an event's schema: subclass with ``event_name`` and the fields of ``data``.

    ::

        class BookingCreated(ferryman.EventModel):
            event_name: ClassVar[str] = "booking.created"
            booking_id: str

        await fm.send(BookingCreated(booking_id="b1"))          # validated before it leaves
        trigger=ferryman.on_event(BookingCreated)                # runs get validated data
        booking = ctx.event.parsed(BookingCreated)
    """

    event_name: ClassVar[str] = ""

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Self:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise EventValidationError(
                f"event {cls.event_name!r} does not match {cls.__name__}: {exc}"
            ) from None

    def to_event(self, *, id: str | None = None) -> Event:
        return Event(name=self.event_name, data=self.model_dump(mode="json"), id=id)


M = Any  # a TypeVar would need a bound on EventModel; kept simple for the public signature


def value_at(data: Any, path: list[str]) -> Any:
    """The value at ``path`` within ``data`` (``["booking", "id"]``), or None if absent.

    How ``match="data.x"`` reads both the run's trigger and a candidate event.
    """
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def coerce_events(events: Event | EventModel | dict[str, Any] | list[Any]) -> list[Event]:
    """Accept one or many events as ``Event``, ``EventModel`` or dict; validate each."""
    items = events if isinstance(events, list) else [events]
    out: list[Event] = []
    for item in items:
        if isinstance(item, Event):
            out.append(item)
        elif isinstance(item, EventModel):
            out.append(item.to_event())
        elif isinstance(item, dict):
            if not isinstance(item.get("data", {}), dict):
                raise EventValidationError("event 'data' must be an object")
            try:
                out.append(Event.model_validate(item))
            except ValidationError as exc:
                raise EventValidationError(f"invalid event: {exc}") from None
        else:
            raise EventValidationError(
                f"cannot send {type(item).__name__}; send a dict, an Event or an EventModel"
            )
    return out
