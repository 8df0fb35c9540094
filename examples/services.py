"""Local stand-ins for the external services the examples call; every call is recorded.

The examples talk to a payment provider, an email service, an LLM, a partner API and a
database. Here each of those is a few lines that append one JSON line to a *ledger* file,
so a test — in this process or another one — can count side effects::

    services.count("email.send", to="guest@example.com")   # how many emails went out

The ledger is ``$FERRYMAN_EXAMPLES_LEDGER`` (default ``.ferryman/examples-ledger.jsonl``
in the current directory). Each line is written with one ``write`` on a file opened for
append, then flushed and fsynced, so a ``kill -9`` of the worker right after a call keeps
the record and concurrent workers never interleave lines.

The ledger is also the stand-ins' only state, which keeps them deterministic across
processes:

- the *database* is the fold of ``seed`` and ``db.<table>.put`` records
  (:func:`seed`, :func:`db_get`, :func:`db_put`);
- *behaviour* is scripted by ``script`` records: ``script("payments.charge", fail=2,
  error="rate_limited")`` makes the next two charges answer 429; the count of failures
  already recorded since the script says whether the next call fails.

From a shell: ``python -m examples.services show|reset|seed TABLE ID JSON``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

LEDGER_ENV = "FERRYMAN_EXAMPLES_LEDGER"
DEFAULT_LEDGER = Path(".ferryman") / "examples-ledger.jsonl"
OK = "ok"


class ServiceError(Exception):
    """A stand-in service answered with an error (``status`` is the HTTP-like code)."""

    status = 503
    outcome = "unavailable"

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message} ({self.status})")
        self.kind = kind


class Unavailable(ServiceError):
    """503: a transient failure; retrying is the right thing to do."""


class RateLimited(ServiceError):
    """429: slow down; ``retry_after`` seconds says for how long."""

    status = 429
    outcome = "rate_limited"

    def __init__(self, kind: str, message: str, retry_after: float) -> None:
        super().__init__(kind, message)
        self.retry_after = retry_after


class BadRequest(ServiceError):
    """400: the request is wrong; retrying cannot help."""

    status = 400
    outcome = "bad_request"


_ERRORS: dict[str, type[ServiceError]] = {
    "unavailable": Unavailable, "rate_limited": RateLimited, "bad_request": BadRequest,
}  # fmt: skip


# -- the ledger --------------------------------------------------------------------------


def ledger_path() -> Path:
    """Where records go: ``$FERRYMAN_EXAMPLES_LEDGER`` or ``.ferryman/examples-ledger.jsonl``."""
    return Path(os.environ.get(LEDGER_ENV) or DEFAULT_LEDGER)


def record(kind: str, **fields: Any) -> dict[str, Any]:
    """Append one record ``{kind, ..., pid, ts}`` durably; return it."""
    entry = {"kind": kind, **fields, "pid": os.getpid(), "ts": time.time()}
    line = (json.dumps(entry, separators=(",", ":"), sort_keys=True) + "\n").encode()
    path = ledger_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one write per line: O_APPEND keeps concurrent lines whole
        os.fsync(fd)
    finally:
        os.close(fd)
    return entry


def records(kind: str | None = None, **match: Any) -> list[dict[str, Any]]:
    """Every record, oldest first; only those of ``kind`` whose fields equal ``match``."""
    path = ledger_path()
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        if kind is not None and entry.get("kind") != kind:
            continue
        if all(entry.get(k) == v for k, v in match.items()):
            out.append(entry)
    return out


def calls(kind: str, **match: Any) -> list[dict[str, Any]]:
    """The successful calls of ``kind`` (``outcome == "ok"``), e.g. ``calls("email.send")``."""
    return records(kind, outcome=OK, **match)


def count(kind: str, **match: Any) -> int:
    """How many successful calls of ``kind`` match ``match``."""
    return len(calls(kind, **match))


def attempts(kind: str, **match: Any) -> list[dict[str, Any]]:
    """Every call of ``kind``, failed or not."""
    return records(kind, **match)


def reset() -> None:
    """Forget everything: empty the ledger."""
    path = ledger_path()
    if path.exists():
        path.unlink()


# -- scripted behaviour ------------------------------------------------------------------


def script(
    kind: str,
    *,
    fail: int,
    error: str = "unavailable",
    key: str | None = None,
    retry_after: float = 30.0,
) -> None:
    """Make the next ``fail`` calls of ``kind`` (for ``key``, or any key) fail with ``error``.

    ``error`` is ``"unavailable"`` (503), ``"rate_limited"`` (429, with ``retry_after``
    seconds) or ``"bad_request"`` (400). A later script for the same kind and key replaces
    an earlier one.
    """
    if error not in _ERRORS:
        raise ValueError(f"error must be one of {sorted(_ERRORS)}, not {error!r}")
    record("script", target=kind, key=key, fail=fail, error=error, retry_after=retry_after)


def _call(kind: str, key: str | None, **fields: Any) -> None:
    """Record a call of ``kind``; raise the scripted error if the script says so."""
    entries = records()
    script_at, active = -1, None
    for i, entry in enumerate(entries):
        if entry["kind"] == "script" and entry["target"] == kind and entry["key"] in (None, key):
            script_at, active = i, entry
    if active is not None:
        failed = sum(
            1 for entry in entries[script_at + 1 :]
            if entry["kind"] == kind and entry["outcome"] != OK
            and (active["key"] is None or entry.get("key") == key)
        )  # fmt: skip
        if failed < active["fail"]:
            cls = _ERRORS[active["error"]]
            record(kind, key=key, outcome=cls.outcome, **fields)
            if cls is RateLimited:
                raise RateLimited(kind, "too many requests", active["retry_after"])
            raise cls(kind, "scripted failure")
    record(kind, key=key, outcome=OK, **fields)


# -- the database --------------------------------------------------------------------------


def seed(table: str, id: str, doc: dict[str, Any]) -> None:
    """Put a row in the stand-in database as test set-up (not counted as a side effect)."""
    record("seed", table=table, id=id, doc=doc)


def db_get(table: str, id: str) -> dict[str, Any] | None:
    """The latest version of row ``id``, or None."""
    doc = None
    for entry in records():
        if entry.get("id") != id:
            continue
        if (entry["kind"] == "seed" and entry["table"] == table) or (
            entry["kind"] == f"db.{table}.put" and entry["outcome"] == OK
        ):
            doc = entry["doc"] if doc is None else {**doc, **entry["doc"]}
    return doc


def db_all(table: str) -> dict[str, dict[str, Any]]:
    """Every row of ``table`` by id, latest versions."""
    ids = {
        e["id"] for e in records()
        if (e["kind"] == "seed" and e.get("table") == table) or e["kind"] == f"db.{table}.put"
    }  # fmt: skip
    return {i: doc for i in sorted(ids) if (doc := db_get(table, i)) is not None}


def db_put(table: str, id: str, doc: dict[str, Any]) -> dict[str, Any]:
    """Update (merge into) row ``id``; recorded as ``db.<table>.put``."""
    _call(f"db.{table}.put", id, id=id, doc=doc)
    return db_get(table, id) or doc


# -- the services ----------------------------------------------------------------------------


def send_email(to: str, template: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Send an email rendered from ``template``; recorded as ``email.send``."""
    _call("email.send", to, to=to, template=template, context=context or {})
    return {"to": to, "template": template, "status": "sent"}


def alert_operations(summary: str, details: dict[str, Any] | None = None) -> None:
    """Page the operations team; recorded as ``ops.alert``."""
    _call("ops.alert", None, summary=summary, details=details or {})


def charge(customer: str, amount: int, currency: str, *, reference: str) -> dict[str, Any]:
    """Charge ``amount`` (minor units); recorded as ``payments.charge``, keyed by reference."""
    _call("payments.charge", reference, customer=customer, amount=amount, currency=currency)
    return {"charge_id": f"ch_{_digest(reference)}", "amount": amount, "currency": currency}


def request_payment(customer: str, amount: int, currency: str, *, reference: str) -> dict[str, Any]:
    """Ask for a payment that completes later (a bank transfer); ``payments.request``.

    The provider answers at once with a pending payment; its ``payment.completed``
    webhook arrives whenever the customer pays (in the examples: when a test sends it).
    """
    _call("payments.request", reference, customer=customer, amount=amount, currency=currency)
    return {"payment_id": f"pay_{_digest(reference)}", "status": "pending"}


def reserve_inventory(order_id: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Hold stock for an order's items; recorded as ``inventory.reserve``, keyed by order."""
    _call("inventory.reserve", order_id, order_id=order_id, items=items)
    return {"order_id": order_id, "reserved": sum(int(i.get("quantity", 1)) for i in items)}


def track(name: str, properties: dict[str, Any] | None = None) -> None:
    """Record a product-analytics event; recorded as ``analytics.track``, keyed by name."""
    _call("analytics.track", name, name=name, properties=properties or {})


def user(user_id: str) -> dict[str, Any]:
    """The user service: a seeded ``users`` row, or a made-up but stable user."""
    _call("users.get", user_id, user_id=user_id)
    return db_get("users", user_id) or {
        "id": user_id, "email": f"{user_id}@example.com", "name": user_id.title(),
    }  # fmt: skip


def transcribe(video_url: str) -> str:
    """The speech-to-text model; recorded as ``llm.transcribe``."""
    _call("llm.transcribe", video_url, video_url=video_url)
    return f"transcript of {video_url}"


def summarize(text: str) -> str:
    """The summarizing LLM; recorded as ``llm.summarize``."""
    _call("llm.summarize", _digest(text), chars=len(text))
    return f"summary: {text[:60]}"


def score_property(property_id: str) -> int:
    """The scoring model: a stable score in [0, 100) per property; ``ml.score``."""
    _call("ml.score", property_id, property_id=property_id)
    return int(_digest(property_id), 16) % 100


def partner_request(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """The flaky partner API; ``partner.<method>``, keyed by path. Script it to fail."""
    _call(f"partner.{method.lower()}", path, path=path, body=body)
    return {"path": path, "status": 200, "etag": _digest(f"{path}{body}")}


def calendar_block(room: str, check_in: str, check_out: str, booking_id: str) -> None:
    """Block a room's nights in the calendar; recorded as ``calendar.block``."""
    _call(
        "calendar.block",
        room,
        room=room,
        check_in=check_in,
        check_out=check_out,
        booking_id=booking_id,
    )


def room_is_free(room: str, check_in: str, check_out: str, booking_id: str) -> bool:
    """Whether no other booking blocked ``room`` on a night of [check_in, check_out)."""
    _call("calendar.check", room, room=room, check_in=check_in, check_out=check_out)
    return not any(
        block["check_in"] < check_out and check_in < block["check_out"]
        for block in calls("calendar.block", room=room)
        if block["booking_id"] != booking_id
    )


def task(name: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A generic back-office job (clean-ups, reports); recorded as ``jobs.<name>``."""
    _call(f"jobs.{name}", None, details=details or {})
    return {"job": name, "done": True, **(details or {})}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def main(argv: list[str]) -> int:
    """``python -m examples.services show | reset | seed TABLE ID JSON``."""
    match argv:
        case ["show"]:
            for entry in records():
                print(json.dumps(entry, sort_keys=True))
        case ["reset"]:
            reset()
        case ["seed", table, id, doc]:
            seed(table, id, json.loads(doc))
        case _:
            print(main.__doc__, file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
