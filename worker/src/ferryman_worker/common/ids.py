"""Sortable ids (ULIDs): 48 bits of milliseconds, 80 random bits, Crockford base32."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id() -> str:
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def time_of(ulid: str) -> float:
    """When an id from :func:`new_id` was made (epoch seconds); 0.0 for other strings."""
    value = 0
    for char in ulid[:10]:
        digit = _ALPHABET.find(char.upper())
        if digit < 0:
            return 0.0
        value = value * 32 + digit
    return value / 1000
