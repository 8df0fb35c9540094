"""Fast JSON for the hot path (orjson), returning ``str`` for PostgreSQL's ``jsonb`` inputs."""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def dumpb(value: Any) -> bytes:
    return orjson.dumps(value)


loads = orjson.loads
