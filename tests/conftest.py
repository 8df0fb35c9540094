"""Fixtures: real PostgreSQL (one server per session) and real NATS (one per test)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from ferryman_worker.dev.embedded import NatsServer, PostgresServer
from ferryman_worker.storage.migrating import migrate
from tests.harness import Stack, new_database

TEMPLATE = "ferryman_template"


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path_factory.mktemp("pg") / "data")
    server.start()
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{TEMPLATE}"'.encode())
    template_url = server.url.rsplit("/", 1)[0] + "/" + TEMPLATE
    asyncio.run(migrate(template_url))
    yield server
    server.stop()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def stack(
    pg_server: PostgresServer,
    nats_server: NatsServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Stack]:
    s = Stack(pg_server, new_database(pg_server, TEMPLATE), nats_server, tmp_path)
    monkeypatch.setenv("FERRYMAN_EXAMPLES_LEDGER", str(s.ledger))
    yield s
    await s.close()
