"""A run's timeline for the REST API (and so the console): attempts, waits, links.

:func:`queries.get_run` reads the run and its steps; this module adds what a timeline
needs beyond the step rows, each from one indexed query per run (never per step):

- every attempt of every step, with its start, end, error and the backoff before the next
  (``step_attempts`` holds each failed attempt; the step row the latest one);
- for waits and invokes, what the step waits for and what resolved it (an event, the
  timeout, or the run's cancellation), and the invoked child run;
- the run's trigger events, the parent run that invoked it, and the runs replayed from it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncCursor

INVOKED_EVENT = "ferryman/function.invoked"
MAX_EVENTS = 100  # a batched run lists its first 100 trigger events


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def attempt_history(step: dict[str, Any], failed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every attempt of one step, oldest first.

    ``failed`` are its ``step_attempts`` rows. A completed ``run`` step adds its last,
    successful attempt from the step row itself.
    """
    history = [
        {
            "attempt": a["attempt"],
            "status": "FAILED",
            "started_at": _iso(a["started_at"]),
            "ended_at": _iso(a["at"]),
            "error": a["error"],
            "retry_at": _iso(a["retry_at"]),
        }
        for a in sorted(failed, key=lambda a: a["attempt"])
    ]
    if step["status"] == "COMPLETED" and step["op"] in ("run", "send_event"):
        history.append(
            {
                "attempt": max(step["attempts"] - 1, len(history)),
                "status": "COMPLETED",
                "started_at": _iso(step["attempt_started_at"] or step["started_at"]),
                "ended_at": _iso(step["ended_at"]),
                "error": None,
                "retry_at": None,
            }
        )
    return history


def resolution(wait: dict[str, Any]) -> str | None:
    """What ended a wait: ``event``, ``timeout``, ``cancel``, or None while pending.

    A timeout is recorded as a resolution without an event at or after the timeout; a
    cancellation resolves the wait without an event before its timeout.
    """
    if wait["resolved_at"] is None:
        return None
    if wait["event_id"] is not None:
        return "event"
    if wait["timeout_at"] is not None and wait["resolved_at"] >= wait["timeout_at"]:
        return "timeout"
    return "cancel"


def describe_wait(wait: dict[str, Any]) -> dict[str, Any]:
    path = wait["match_path"]
    return {
        "event": wait["event_name"],
        "match": "data." + ".".join(path) if path else None,
        "if": wait["expression"],
        "timeout_at": _iso(wait["timeout_at"]),
        "resolved_at": _iso(wait["resolved_at"]),
        "resolved_by": resolution(wait),
        "event_id": wait["event_id"],
    }


async def enrich(
    cur: AsyncCursor[dict[str, Any]], run: dict[str, Any], row: dict[str, Any], steps: list[Any]
) -> None:
    """Add the timeline's details to ``run`` (the API's run) and its ``steps``."""
    run_id = row["id"]
    await cur.execute(
        "SELECT step_id, attempt, error, started_at, at, retry_at FROM step_attempts "
        "WHERE run_id = %s",
        (run_id,),
    )
    failed: dict[str, list[dict[str, Any]]] = {}
    for a in await cur.fetchall():
        failed.setdefault(a["step_id"], []).append(a)
    waiting = [f"{run_id}/{s['step_id']}" for s in steps if s["op"] in ("wait", "invoke")]
    waits: dict[str, dict[str, Any]] = {}
    if waiting:
        await cur.execute("SELECT * FROM waits WHERE id = ANY(%s)", (waiting,))
        waits = {w["step_id"]: w for w in await cur.fetchall()}
    for api_step, s in zip(run["steps"], steps, strict=True):
        api_step["position"] = s["position"]
        api_step["parallel"] = s["parallel"]
        api_step["attempt_history"] = attempt_history(s, failed.get(s["step_id"], []))
        wait = waits.get(s["step_id"])
        if wait is not None:
            api_step["wait"] = describe_wait(wait)
            if wait["kind"] == "invoke":
                api_step["invoked_run_id"] = wait["match_value"]
    run["event_ids"] = row["event_ids"]
    await cur.execute(
        "SELECT id, name, data, ts, received_at FROM events WHERE id = ANY(%s)",
        (row["event_ids"][:MAX_EVENTS],),
    )
    by_id = {e["id"]: e for e in await cur.fetchall()}
    run["events"] = [
        {**by_id[i], "received_at": _iso(by_id[i]["received_at"])}
        for i in row["event_ids"][:MAX_EVENTS]
        if i in by_id
    ]
    run["parent"] = None
    first = run["events"][0] if run["events"] else None
    if first is not None and first["name"] == INVOKED_EVENT:
        meta = first["data"].get("_ferryman") or {}
        run["parent"] = {"run_id": meta.get("parent_run_id"), "step_id": meta.get("step_id")}
    await cur.execute(
        "SELECT id FROM runs WHERE replay_of = %s ORDER BY created_at, id LIMIT 100", (run_id,)
    )
    run["replays"] = [r["id"] for r in await cur.fetchall()]
