"""Durations as people write them: ``timedelta``, seconds, ``"1h30m"``, ``"3 days"``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {
    "ms": 0.001, "millisecond": 0.001, "milliseconds": 0.001,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}  # fmt: skip
_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*")

Duration = timedelta | int | float | str


def parse_duration(value: Duration, *, what: str = "duration") -> timedelta:
    """Turn a duration into a ``timedelta`` or raise ValueError saying how to write it."""
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, bool):
        raise ValueError(f"{what} must be a duration, not a boolean")
    elif isinstance(value, int | float):
        result = timedelta(seconds=value)
    elif isinstance(value, str):
        text = value.strip()
        pos, total = 0, 0.0
        while pos < len(text):
            match = _PART.match(text, pos)
            if not match or match.group(2).lower() not in _UNITS:
                raise ValueError(
                    f"{what} {value!r} is not a duration; write it like '30s', '1h30m', "
                    "'3 days' or pass a timedelta"
                )
            total += float(match.group(1)) * _UNITS[match.group(2).lower()]
            pos = match.end()
        if not text:
            raise ValueError(f"{what} is empty; write it like '30s' or '1h30m'")
        result = timedelta(seconds=total)
    else:
        raise ValueError(f"{what} must be a timedelta, a number of seconds or a string like '1h'")
    if result < timedelta(0):
        raise ValueError(f"{what} {value!r} is negative")
    return result


def format_duration(value: timedelta) -> str:
    """The shortest Go-style string for ``value`` (``90s`` -> ``1m30s``), as CRs store them."""
    ms = round(value.total_seconds() * 1000)
    if ms % 1000:
        return f"{ms}ms"
    seconds = ms // 1000
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"
