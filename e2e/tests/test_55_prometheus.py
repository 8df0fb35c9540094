"""A real Prometheus (Debian's package) scrapes the operator while it reconciles the
examples' DurableFunctions and scales their WorkerPools: every panel of the dashboard's
Operator row returns data (the rows about runs are proven against `ferryman dev` in
tests/monitoring/test_live_prometheus.py, which this reuses)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kube import REPO, free_port, wait_for

from conftest import Operator

sys.path.insert(0, str(REPO))
from tests.monitoring.test_live_prometheus import Prom, panel_queries
from tests.monitoring.tools import binary

ROW = "Operator"


@pytest.fixture(scope="module")
def prom(operator: Operator, applied_examples: list[str], state_dir: Path) -> Iterator[Prom]:
    port = free_port()
    folder = state_dir / "prometheus"
    folder.mkdir(exist_ok=True)
    config = {
        "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
        "scrape_configs": [
            {
                "job_name": "ferryman-operator",
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{operator.metrics_port}"],
                        "labels": {"component": "operator"},
                    }
                ],
            }
        ],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    with (folder / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [binary("prometheus"), f"--config.file={folder / 'prometheus.yml'}",
             f"--storage.tsdb.path={folder / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        yield Prom(port)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def test_every_operator_panel_returns_data(prom: Prom) -> None:
    start = time.time()

    def scraped() -> bool:
        try:
            up = prom.get("/api/v1/query", query='up{component="operator"}')["result"]
        except OSError:
            return False
        return bool(up) and up[0]["value"][1] == "1"

    wait_for("Prometheus scraping the operator", scraped, timeout=60)
    queries = panel_queries({ROW})
    assert len(queries) >= 4, queries

    def all_have_data() -> bool:
        return all(prom.has_data(expr, start) for _, expr in queries)

    # timers reconcile every 3 s and scale every 1 s (conftest): a few scrapes suffice
    try:
        wait_for("every Operator panel to have data", all_have_data, timeout=90)
    except Exception:
        empty = [(t, e) for t, e in queries if not prom.has_data(e, start)]
        raise AssertionError(f"panels without data: {empty}") from None
