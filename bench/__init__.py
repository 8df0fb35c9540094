"""Ferryman benchmarks, side by side with DBOS Transact on the same PostgreSQL.

Run ``python -m bench --help``. The orchestrator (:mod:`bench.cli`) starts one PostgreSQL
and one NATS server, then runs every (scenario, system) pair in a fresh child process
(:mod:`bench.runner`) against its own database on that PostgreSQL, so that each figure —
memory above all — belongs to one system and one scenario only.
"""
