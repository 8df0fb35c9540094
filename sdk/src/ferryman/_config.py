"""Function configuration: triggers, retries and flow control, as frozen pydantic models.

Field names follow FEATURES.md in snake_case. Every model validates on construction, so a
wrong option fails where the function is declared, with a message that names the field.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal, TypeVar

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ferryman._durations import parse_duration

_T = TypeVar("_T", bound=BaseModel)

MAX_TRIGGERS = 10
MAX_RETRIES = 20
DEFAULT_RETRIES = 4


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


def _duration(value: Any, what: str) -> timedelta:
    try:
        return parse_duration(value, what=what)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


MAX_EVENT_NAME = 256
_BAD_NAME_CHARS = re.compile(r"[\s*>]")


def check_event_name(name: str) -> str:
    """The rule the gateway applies to events (``ferryman_jetstream.subjects``), checked
    where a function is declared, so a name no event can have fails at import and not,
    later, inside the worker."""
    if not name:
        raise ValueError("an event name is required")
    if len(name) > MAX_EVENT_NAME:
        raise ValueError(f"event name is {len(name)} characters; the limit is {MAX_EVENT_NAME}")
    if _BAD_NAME_CHARS.search(name):
        raise ValueError(
            f"event name {name!r} contains whitespace, '*' or '>'; "
            "use letters, digits and . / - _ (for example 'booking.created')"
        )
    if name.startswith(".") or name.endswith(".") or ".." in name:
        raise ValueError(
            f"event name {name!r} has an empty segment between dots; "
            "write it like 'app/booking.created'"
        )
    return name


class EventTrigger(_Frozen):
    """Run once per event named ``event`` (optionally filtered by a CEL ``if`` expression)."""

    event: str
    if_: str | None = Field(default=None, alias="if")
    schema_: Any = Field(default=None, alias="schema", exclude=True)

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, arbitrary_types_allowed=True
    )

    @field_validator("event")
    @classmethod
    def _routable(cls, value: str) -> str:
        return check_event_name(value)


_CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 6),
)


class CronTrigger(_Frozen):
    """Run on a 5-field cron schedule, in ``timezone`` (IANA name; UTC by default)."""

    cron: str
    timezone: str = "UTC"

    @model_validator(mode="before")
    @classmethod
    def _split_tz(cls, data: Any) -> Any:
        # Accept Inngest's "TZ=Europe/Paris 0 9 * * *" form.
        if isinstance(data, dict) and isinstance(data.get("cron"), str):
            cron = data["cron"].strip()
            if cron.startswith(("TZ=", "CRON_TZ=")):
                tz, _, rest = cron.partition(" ")
                data = {**data, "cron": rest.strip(), "timezone": tz.split("=", 1)[1]}
        return data

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        fields = value.split()
        if len(fields) != 5:
            raise ValueError(
                f"{value!r} has {len(fields)} fields, not 5 "
                "(minute hour day-of-month month day-of-week), e.g. '0 9 * * 1-5'"
            )
        if not croniter.is_valid(value):
            for i, (name, low, high) in enumerate(_CRON_FIELDS):
                field = fields[i]
                # the field alone, the others '*': the first one that fails is the culprit
                if not croniter.is_valid(" ".join(["*"] * i + [field] + ["*"] * (4 - i))):
                    raise ValueError(
                        f"{value!r}: the {name} field {field!r} is not valid "
                        f"({name} runs from {low} to {high})"
                    )
            raise ValueError(f"{value!r} is not a valid cron expression, e.g. '0 9 * * 1-5'")
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name like 'Europe/Paris'"
            ) from None
        return value


Trigger = EventTrigger | CronTrigger


def on_event(event: str | type, *, if_: str | None = None) -> EventTrigger:
    """Trigger on an event name, or on a typed event class (a :class:`ferryman.EventModel`)."""
    schema = None
    if isinstance(event, type):
        schema = event
        event = getattr(event, "event_name", None) or ""
        if not event:
            raise ValueError(f"{schema.__name__} has no event_name; set it as a class variable")
    return _validated(EventTrigger, {"event": event, "if": if_, "schema": schema})


def on_cron(cron: str, *, timezone: str | None = None) -> CronTrigger:
    """Trigger on a cron schedule: ``on_cron("0 9 * * *", timezone="Europe/Paris")``."""
    data: dict[str, Any] = {"cron": cron}
    if timezone is not None:
        data["timezone"] = timezone
    return _validated(CronTrigger, data)


def _validated(model: type[_T], data: dict[str, Any]) -> _T:
    """Build ``model`` or raise InvalidFunctionError with a one-line explanation."""
    from pydantic import ValidationError

    from ferryman.errors import InvalidFunctionError

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or model.__name__}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise InvalidFunctionError(f"{model.__name__}: {reasons}") from None


class Backoff(_Frozen):
    """Exponential backoff between attempts: ``initial * factor**n``, capped, with jitter."""

    initial: timedelta = timedelta(seconds=1)
    factor: float = Field(default=2.0, ge=1.0, le=10.0)
    max: timedelta = timedelta(hours=1)
    jitter: float = Field(default=0.2, ge=0.0, le=1.0)

    @field_validator("initial", "max", mode="before")
    @classmethod
    def _dur(cls, value: Any) -> timedelta:
        return _duration(value, "backoff delay")

    def delay(self, attempt: int, rand: float) -> timedelta:
        """The wait before attempt ``attempt + 1`` (``attempt`` counts from 0).

        ``rand`` in [0, 1) spreads attempts by up to ``jitter`` of the delay, downwards,
        so the cap is never exceeded.
        """
        base = min(self.initial.total_seconds() * self.factor**attempt, self.max.total_seconds())
        return timedelta(seconds=base * (1 - self.jitter * rand))


class Concurrency(_Frozen):
    limit: int = Field(ge=1, le=100_000)
    key: str | None = None
    scope: Literal["fn", "app", "account"] = "fn"


class Throttle(_Frozen):
    limit: int = Field(ge=1)
    period: timedelta
    burst: int = Field(default=1, ge=1)
    key: str | None = None

    @field_validator("period", mode="before")
    @classmethod
    def _dur(cls, value: Any) -> timedelta:
        return _duration(value, "throttle period")


class RateLimit(_Frozen):
    limit: int = Field(ge=1)
    period: timedelta
    key: str | None = None

    @field_validator("period", mode="before")
    @classmethod
    def _dur(cls, value: Any) -> timedelta:
        period = _duration(value, "rate_limit period")
        if period > timedelta(hours=24):
            raise ValueError("rate_limit period must be at most 24h")
        return period


class Debounce(_Frozen):
    period: timedelta
    key: str | None = None
    timeout: timedelta | None = None

    @field_validator("period", "timeout", mode="before")
    @classmethod
    def _dur(cls, value: Any) -> timedelta | None:
        return None if value is None else _duration(value, "debounce period")


class BatchEvents(_Frozen):
    max_size: int = Field(ge=1, le=1000)
    timeout: timedelta
    key: str | None = None

    @field_validator("timeout", mode="before")
    @classmethod
    def _dur(cls, value: Any) -> timedelta:
        return _duration(value, "batch_events timeout")


class Priority(_Frozen):
    run: str


class Singleton(_Frozen):
    key: str | None = None
    mode: Literal["skip", "cancel"] = "skip"


class Timeouts(_Frozen):
    start: timedelta | None = None
    finish: timedelta | None = None

    @field_validator("start", "finish", mode="before")
    @classmethod
    def _dur(cls, value: Any) -> timedelta | None:
        return None if value is None else _duration(value, "timeout")


class Cancel(_Frozen):
    event: str
    match: str | None = None
    if_: str | None = Field(default=None, alias="if")
    timeout: timedelta | None = None

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @field_validator("event")
    @classmethod
    def _routable(cls, value: str) -> str:
        return check_event_name(value)

    @field_validator("timeout", mode="before")
    @classmethod
    def _dur(cls, value: Any) -> timedelta | None:
        return None if value is None else _duration(value, "cancel_on timeout")


_FUNCTION_ID = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")


class FunctionConfig(_Frozen):
    """Everything ``@fm.function(...)`` was told, validated."""

    id: str
    name: str | None = None
    triggers: tuple[Trigger, ...]

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not _FUNCTION_ID.fullmatch(value) or len(value) > 63:
            raise ValueError(
                f"{value!r} is not a valid function id: use at most 63 lowercase letters, "
                "digits and '-', starting and ending with a letter or digit "
                "(e.g. 'process-booking')"
            )
        return value

    retries: int = Field(default=DEFAULT_RETRIES, ge=0, le=MAX_RETRIES)
    backoff: Backoff = Backoff()
    concurrency: tuple[Concurrency, ...] = ()
    throttle: Throttle | None = None
    rate_limit: RateLimit | None = None
    debounce: Debounce | None = None
    batch_events: BatchEvents | None = None
    priority: Priority | None = None
    idempotency: str | None = None
    singleton: Singleton | None = None
    timeouts: Timeouts | None = None
    cancel_on: tuple[Cancel, ...] = ()

    @field_validator("triggers")
    @classmethod
    def _some_triggers(cls, value: tuple[Trigger, ...]) -> tuple[Trigger, ...]:
        if not value:
            raise ValueError("a function needs at least one trigger: on_event(...) or on_cron(...)")
        if len(value) > MAX_TRIGGERS:
            raise ValueError(f"a function has at most {MAX_TRIGGERS} triggers, got {len(value)}")
        return value

    @field_validator("concurrency")
    @classmethod
    def _two_limits(cls, value: tuple[Concurrency, ...]) -> tuple[Concurrency, ...]:
        if len(value) > 2:
            raise ValueError("a function has at most 2 concurrency limits")
        return value

    @field_validator("cancel_on")
    @classmethod
    def _five_cancels(cls, value: tuple[Cancel, ...]) -> tuple[Cancel, ...]:
        if len(value) > 5:
            raise ValueError("a function has at most 5 cancel_on entries")
        return value

    @model_validator(mode="after")
    def _compatible_flow_control(self) -> FunctionConfig:
        # Combinations Inngest refuses, or whose meaning would be unclear: refused here
        # rather than half-applied at run time.
        refused = {
            "batch_events": ("debounce", "idempotency", "rate_limit", "cancel_on", "priority",
                             "singleton", "throttle"),
            "debounce": ("throttle", "singleton"),
        }  # fmt: skip
        for option, others in refused.items():
            if not getattr(self, option):
                continue
            for other in others:
                if getattr(self, other):
                    raise ValueError(f"{option} cannot be combined with {other}")
        return self

    @property
    def event_triggers(self) -> list[EventTrigger]:
        return [t for t in self.triggers if isinstance(t, EventTrigger)]

    @property
    def cron_triggers(self) -> list[CronTrigger]:
        return [t for t in self.triggers if isinstance(t, CronTrigger)]
