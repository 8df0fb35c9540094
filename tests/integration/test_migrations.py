"""Migrations: from scratch, re-run, and run concurrently by many starting workers."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from ferryman_worker.dev.embedded import PostgresServer
from ferryman_worker.storage.migrating import available, migrate

pytestmark = pytest.mark.integration


def fresh_database(pg: PostgresServer, name: str) -> str:
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"'.encode())
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    return pg.url.rsplit("/", 1)[0] + "/" + name


async def test_migrations_apply_from_scratch_in_order(pg_server: PostgresServer) -> None:
    url = fresh_database(pg_server, "mig_scratch")
    applied = await migrate(url)
    assert applied == [name for _, name, _ in available()]
    with psycopg.connect(url) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
    assert {"runs", "steps", "events", "timers", "run_keys", "cron_ticks"} <= tables


async def test_migrations_rerun_is_a_no_op(pg_server: PostgresServer) -> None:
    url = fresh_database(pg_server, "mig_rerun")
    await migrate(url)
    assert await migrate(url) == []


async def test_concurrent_migrations_apply_each_once(pg_server: PostgresServer) -> None:
    url = fresh_database(pg_server, "mig_concurrent")
    results = await asyncio.gather(*(migrate(url) for _ in range(6)))
    assert sorted(len(r) for r in results) == [0] * 5 + [len(available())]
    with psycopg.connect(url) as conn:
        versions = conn.execute("SELECT version FROM ferryman_migrations").fetchall()
    assert len(versions) == len(available())
