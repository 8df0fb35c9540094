"""`ferryman dev` serves the gateway's and the worker's metrics on its one port."""

from __future__ import annotations

import re
import time
import urllib.request

import pytest

from tests.integration.test_dev import Dev, dev  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def scrape(server: Dev) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as r:
        return r.read().decode()


def test_one_port_has_the_workers_run_metrics_and_the_gateways_ingest(dev: Dev) -> None:  # noqa: F811
    dev.start()
    [sleeper] = dev.api("/e/dev", {"name": "dev.nap", "data": {"seconds": 600}})["ids"]
    dev.wait_status(sleeper, "SLEEPING")
    deadline = time.monotonic() + 30
    while 'ferryman_runs_by_state{function="devtest-nap",state="SLEEPING"} 1.0' not in (
        text := scrape(dev)
    ):
        assert time.monotonic() < deadline, text
        time.sleep(0.5)
    assert 'ferryman_runs_by_state{function="devtest-nap",state="QUEUED"} 0.0' in text
    assert "ferryman_engine_gauges_leader 1.0" in text
    dev.api(f"/v1/runs/{dev.run_of(sleeper)['run_id']}/cancel", {})
    [event_id] = dev.api("/e/dev", {"name": "dev.nap", "data": {"seconds": 1}})["ids"]
    dev.wait_status(event_id, "COMPLETED")
    deadline = time.monotonic() + 30
    while 'ferryman_runs_finished_total{function="devtest-nap",status="COMPLETED"} 1.0' not in (
        text := scrape(dev)
    ):
        assert time.monotonic() < deadline, text
        time.sleep(0.5)
    assert "ferryman_events_received_total 2.0" in text
    assert 'ferryman_runs_started_total{function="devtest-nap"} 2.0' in text
    # the gateway's cancellation and the worker's completion, in one family
    assert 'ferryman_runs_finished_total{function="devtest-nap",status="CANCELLED"} 1.0' in text
    assert 'ferryman_step_duration_seconds_count{function="devtest-nap",step="before"} 2.0' in text
    assert 'ferryman_step_attempts_total{function="devtest-nap",outcome="completed"} 3.0' in text
    assert 'ferryman_timer_lateness_seconds_count{function="devtest-nap"} 1.0' in text
    assert 'ferryman_run_duration_seconds_count{function="devtest-nap",status="COMPLETED"}' in text
    assert "ferryman_checkpoint_commit_seconds_count" in text
    types = re.findall(r"^# TYPE (\S+)", text, re.M)
    assert len(types) == len(set(types)), "each family once"
    dev.stop()
