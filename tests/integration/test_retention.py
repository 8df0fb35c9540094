"""Retention: finished runs, their steps and old events go after the configured age, in
batches; anything a live run still needs stays."""

from __future__ import annotations

from datetime import timedelta

import pytest
from psycopg_pool import AsyncConnectionPool

from ferryman_worker.storage.retaining import purge
from tests.apps import edges_app
from tests.harness import Stack, wait_for

pytestmark = pytest.mark.integration


def seed(stack: Stack, run_id: str, status: str, age_days: float, *, event: str = "") -> None:
    """A run of ``status`` last changed ``age_days`` ago, with a step, an attempt, and the
    event that started it (received as long ago)."""
    event = event or f"evt-{run_id}"
    stack.query(
        "INSERT INTO events (id, name, data, ts, received_at) "
        "VALUES (%s, 'old.thing', '{}', 0, now() - make_interval(days => %s)) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        event,
        age_days,
    )
    stack.query(
        "INSERT INTO runs (id, function_id, event_id, event_ids, status, created_at, updated_at) "
        "VALUES (%s, 'edges-who', %s, ARRAY[%s], %s, now() - make_interval(days => %s), "
        "now() - make_interval(days => %s)) RETURNING 1",
        run_id,
        event,
        event,
        status,
        age_days,
        age_days,
    )
    stack.query(
        "INSERT INTO steps (run_id, step_id, name, position, op, status) "
        "VALUES (%s, 's', 's', 0, 'run', 'COMPLETED') RETURNING 1",
        run_id,
    )
    stack.query(
        "INSERT INTO step_attempts (run_id, step_id, attempt, error) "
        "VALUES (%s, 's', 0, '{}') RETURNING 1",
        run_id,
    )


def count(stack: Stack, table: str, run_id: str) -> int:
    column = "id" if table in ("runs", "events") else "run_id"
    return int(stack.query(f"SELECT count(*) FROM {table} WHERE {column} = %s", run_id)[0][0])


async def test_old_finished_runs_and_their_events_go_in_batches_and_live_ones_stay(
    stack: Stack,
) -> None:
    for n in range(5):
        seed(stack, f"old-done-{n}", ["COMPLETED", "FAILED", "CANCELLED"][n % 3], 40)
    seed(stack, "old-sleeping", "SLEEPING", 40)
    seed(stack, "new-done", "COMPLETED", 5)
    # an old event held by a live run that was not started by it (a batch)
    stack.query(
        "INSERT INTO events (id, name, data, ts, received_at) "
        "VALUES ('evt-batched', 'old.thing', '{}', 0, now() - interval '40 days') RETURNING 1"
    )
    stack.query(
        "UPDATE runs SET event_ids = event_ids || 'evt-batched'::text "
        "WHERE id = 'old-sleeping' RETURNING 1"
    )
    stack.query(
        "INSERT INTO events (id, name, data, ts, received_at) "
        "VALUES ('evt-orphan', 'old.thing', '{}', 0, now() - interval '40 days') RETURNING 1"
    )

    pool = AsyncConnectionPool(stack.db_url, min_size=1, max_size=2, open=False)
    await pool.open()
    try:
        purged = await purge(pool, timedelta(days=30), batch=2)
    finally:
        await pool.close()

    assert (purged.runs, purged.events) == (5, 6)  # 5 runs' events + the orphan
    for n in range(5):
        run_id = f"old-done-{n}"
        assert count(stack, "runs", run_id) == 0
        assert count(stack, "steps", run_id) == 0
        assert count(stack, "step_attempts", run_id) == 0
        assert count(stack, "events", f"evt-{run_id}") == 0
    assert count(stack, "runs", "old-sleeping") == 1
    assert count(stack, "steps", "old-sleeping") == 1
    assert count(stack, "events", "evt-old-sleeping") == 1
    assert count(stack, "events", "evt-batched") == 1, "a live run still holds it"
    assert count(stack, "runs", "new-done") == 1
    assert count(stack, "events", "evt-new-done") == 1
    assert count(stack, "events", "evt-orphan") == 0


async def test_a_worker_purges_on_its_own_at_the_configured_age(stack: Stack) -> None:
    seed(stack, "ancient", "COMPLETED", 3)
    seed(stack, "recent", "COMPLETED", 1)
    await stack.start_worker(edges_app.fm, retention_days=2, retention_interval_seconds=0.5)
    await wait_for(
        lambda: count(stack, "runs", "ancient") + count(stack, "events", "evt-ancient") == 0,
        30,
        "never purged",
    )
    assert count(stack, "runs", "recent") == 1
    assert count(stack, "events", "evt-recent") == 1


def test_retention_settings_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    from ferryman_worker.common.settings import SettingsError, load_settings

    monkeypatch.setenv("FERRYMAN_RETENTION_DAYS", "-1")
    with pytest.raises(SettingsError, match="FERRYMAN_RETENTION_DAYS"):
        load_settings()
    monkeypatch.setenv("FERRYMAN_RETENTION_DAYS", "0")
    assert load_settings().retention_days == 0
