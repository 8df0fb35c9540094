"""The least a durable step can cost on this PostgreSQL, measured in the same run.

- :func:`single_commit_ms`: one ``INSERT`` of a step-sized row and its ``COMMIT``, one
  round trip each time (autocommit), as a checkpoint of one step at a time must do. The
  floor of scenario (a).
- :func:`group_commit_rows_per_s`: the same rows written as multi-row ``INSERT`` s of
  ``group`` rows, each its own transaction. The floor of scenario (b), whose checkpoints
  are group commits.

Both use the server's durable settings (``fsync``, ``synchronous_commit`` on) and a table
shaped like ``steps`` (text ids, a JSON output), dropped afterwards.
"""

from __future__ import annotations

import time

import psycopg

TABLE = "bench_floor"


async def _table(conn: psycopg.AsyncConnection) -> None:
    await conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
    await conn.execute(
        f"CREATE TABLE {TABLE} (run_id text, step_id text, output jsonb, "
        "ended_at timestamptz DEFAULT now(), PRIMARY KEY (run_id, step_id))"
    )


async def single_commit_ms(db_url: str, n: int = 500) -> float:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await _table(conn)
        for i in range(20):  # warm-up
            await conn.execute(f"INSERT INTO {TABLE} VALUES ('w', %s, 'null')", (str(i),))
        t0 = time.perf_counter()
        for i in range(n):
            await conn.execute(f"INSERT INTO {TABLE} VALUES ('r', %s, 'null')", (str(i),))
        elapsed = time.perf_counter() - t0
        await conn.execute(f"DROP TABLE {TABLE}")
    return elapsed * 1000 / n


async def group_commit_rows_per_s(db_url: str, rows: int, group: int = 100) -> float:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await _table(conn)
        t0 = time.perf_counter()
        for start in range(0, rows, group):
            size = min(group, rows - start)
            values = ", ".join(["(%s, %s, 'null')"] * size)
            params: list[str] = []
            for i in range(start, start + size):
                params += [f"r{i // 10}", f"s{i % 10}"]
            await conn.execute(f"INSERT INTO {TABLE} VALUES {values}", params)
        elapsed = time.perf_counter() - t0
        await conn.execute(f"DROP TABLE {TABLE}")
    return rows / elapsed
