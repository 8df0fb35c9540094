"""A real Prometheus (Debian's package) scrapes `ferryman dev` under a scripted workload;
every dashboard panel query returns data and every alert fires in the scenario made for
it and is quiet before it.

The alerts' windows and `for:` durations are minutes in production; here each is
shortened by an explicit, checked substitution (SHORTER below: every replacement must
match and every alert needs an entry, so a changed rule breaks this test instead of
silently testing something else). The expressions are otherwise the chart's. `promtool test rules`
(test_alert_rules.py) covers the production durations in virtual time.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from ferryman_worker.dev.embedded import free_port
from tests.monitoring.tools import DASHBOARD, ROOT, RULES, binary

pytestmark = pytest.mark.integration

SCRAPE = "2s"
RATE_INTERVAL = "30s"  # what Grafana's $__rate_interval would be at this scrape interval

SHORTER: dict[str, list[tuple[str, str]]] = {
    "FerrymanRunsFailing": [("[30m]", "[1m]"), ("[30m]", "[1m]"), ("for: 5m", "for: 2s")],
    "FerrymanBacklogGrowing": [("[10m]", "[20s]"), ("for: 15m", "for: 4s")],
    "FerrymanOldestMessageOld": [("> 300", "> 8"), ("for: 5m", "for: 2s")],
    "FerrymanTimersLate": [("> 60", "> 5"), ("for: 5m", "for: 2s")],
    "FerrymanMatcherLagging": [("> 60", "> 5"), ("for: 5m", "for: 2s")],
    "FerrymanComponentDown": [("for: 5m", "for: 2s")],
}


def shortened_rules() -> str:
    """The rule file with each alert's windows shortened, alert by alert."""
    text = RULES.read_text()
    head, *blocks = text.split("      - alert: ")
    out = [head]
    for original in blocks:
        name = original.split("\n", 1)[0].strip()
        assert name in SHORTER, f"{name}: say how to shorten it"
        block = original
        for old, new in SHORTER[name]:
            assert old in block, (name, old)
            block = block.replace(old, new, 1)
        out.append(block)
    return "      - alert: ".join(out)


class Prom:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str, **params: Any) -> Any:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=20) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]

    def firing(self) -> dict[str, list[dict[str, str]]]:
        out: dict[str, list[dict[str, str]]] = {}
        for alert in self.get("/api/v1/alerts")["alerts"]:
            if alert["state"] == "firing":
                out.setdefault(alert["labels"]["alertname"], []).append(alert["labels"])
        return out

    def wait_firing(self, name: str, timeout: float = 90) -> list[dict[str, str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if name in (now := self.firing()):
                return now[name]
            time.sleep(1)
        raise AssertionError(f"{name} never fired; firing: {self.firing()}")

    def has_data(self, expr: str, start: float) -> bool:
        data = self.get("/api/v1/query_range", query=expr, start=start, end=time.time(), step="2s")
        return any(
            not math.isnan(float(v)) for series in data["result"] for _, v in series["values"]
        )


def send(port: int, name: str, data: dict[str, Any]) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/e/dev",
        data=json.dumps({"name": name, "data": data}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        return str(json.loads(r.read())["ids"][0])


def api(port: int, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.loads(r.read())


def wait_status(port: int, event_id: str, status: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = api(port, f"/v1/events/{event_id}/runs")["data"]
        if runs and runs[0]["status"] == status:
            return dict(runs[0])
        time.sleep(0.3)
    raise AssertionError(f"run of {event_id} never {status}: {runs}")


# Rows about components `ferryman dev` does not run: proven on the e2e control plane
# (e2e/tests/test_55_prometheus.py).
ELSEWHERE = {"Operator"}


def panel_queries(rows: set[str] | None = None) -> list[tuple[str, str]]:
    """Every panel query, with Grafana's variables filled in; ``rows``: only those rows'
    panels (default: every row but ELSEWHERE's)."""
    dashboard = json.loads(DASHBOARD.read_text())
    out, row = [], ""
    for p in dashboard["panels"]:
        if p["type"] == "row":
            row = p["title"]
            continue
        if (row in rows) if rows is not None else (row not in ELSEWHERE):
            for t in p["targets"]:
                expr = t["expr"].replace("$__rate_interval", RATE_INTERVAL)
                out.append((p["title"], expr.replace("$function", ".*")))
    return out


def worker_pid(dev_pid: int) -> int:
    out = subprocess.run(
        ["pgrep", "-P", str(dev_pid), "-f", "ferryman_worker.cli worker"],
        capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    assert len(out) == 1, out
    return int(out[0])


@pytest.fixture
def stack(tmp_path: Path) -> Any:
    prometheus = binary("prometheus")
    dev_port, prom_port, dead_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
        "PYTHONUNBUFFERED": "1",
        "FERRYMAN_REPAIR_INTERVAL_SECONDS": "600",  # the stall scenario must stay stalled
    }
    dev_log = (tmp_path / "dev.log").open("wb")
    dev = subprocess.Popen(
        [sys.executable, "-m", "ferryman_worker.cli", "dev", "-m", "tests.apps.watched_app",
         "--port", str(dev_port), "--no-reload"],
        cwd=tmp_path, env=env, stdout=dev_log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    (tmp_path / "rules.yaml").write_text(shortened_rules())
    config = {
        "global": {
            "scrape_interval": SCRAPE,
            "evaluation_interval": "1s",
            "scrape_timeout": SCRAPE,
        },
        "rule_files": [str(tmp_path / "rules.yaml")],
        "scrape_configs": [
            {
                "job_name": "ferryman-dev",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{dev_port}"], "labels": {"component": "dev"}}
                ],
            },
            {  # a worker that is down: FerrymanComponentDown is about it, never about dev
                "job_name": "ferryman-workers",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{dead_port}"], "labels": {"component": "worker"}}
                ],
            },
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    prom_log = (tmp_path / "prometheus.log").open("wb")
    prom = subprocess.Popen(
        [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=prom_log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            assert dev.poll() is None, (tmp_path / "dev.log").read_text()[-3000:]
            assert prom.poll() is None, (tmp_path / "prometheus.log").read_text()[-3000:]
            if "hosting 5 functions" in (tmp_path / "dev.log").read_text(errors="replace"):
                break
            assert time.monotonic() < deadline, (tmp_path / "dev.log").read_text()[-3000:]
            time.sleep(0.5)
        yield dev, dev_port, Prom(prom_port), tmp_path
    finally:
        for proc in (prom, dev):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


@pytest.mark.timeout(480)
def test_every_panel_returns_data_and_every_alert_fires_when_it_should(stack: Any) -> None:
    dev, port, prom, _ = stack
    start = time.time()

    # -- healthy: retries that succeed, sleeps, waits resolved and expired, a cancel
    for _ in range(3):
        send(port, "watch.flaky", {"fail": 2, "sleep": 1})
    order = send(port, "watch.order", {"order": "A-1", "timeout": 600})
    send(port, "watch.order", {"order": "A-2", "timeout": 2})
    doomed_later = send(port, "watch.order", {"order": "A-3", "timeout": 600})
    wait_status(port, order, "WAITING")
    send(port, "watch.paid", {"order": "A-1"})
    wait_status(port, order, "COMPLETED")
    api(port, f"/v1/runs/{wait_status(port, doomed_later, 'WAITING')['run_id']}/cancel", {})
    for _ in range(5):
        send(port, "watch.slow", {"seconds": 0.2})
    with pytest.raises(urllib.error.HTTPError):
        api(port, "/e/dev", {"name": ""})  # refused: counted by HTTP status
    time.sleep(8)
    quiet = prom.firing()
    assert "FerrymanRunsFailing" not in quiet, quiet
    for name in ("FerrymanBacklogGrowing", "FerrymanOldestMessageOld", "FerrymanTimersLate",
                 "FerrymanMatcherLagging"):  # fmt: skip
        assert name not in quiet, quiet

    # -- the component that is down (and only it)
    down = prom.wait_firing("FerrymanComponentDown")
    assert [a["component"] for a in down] == ["worker"], down

    # -- a function that fails every time
    for _ in range(3):
        send(port, "watch.doomed", {})
    failing = prom.wait_firing("FerrymanRunsFailing")
    assert {a["function"] for a in failing} == {"watch-doomed"}, failing

    # -- flow control, once Prometheus has scraped for a while: one at a time (the others
    # held and waiting 1.5 s, then 3 s), three an hour (the fourth skipped)
    for _ in range(4):
        send(port, "watch.limited", {})
    time.sleep(5)

    # -- the worker stalls (SIGSTOP): work piles up, timers and the matcher fall behind
    send(port, "watch.flaky", {"fail": 0, "sleep": 2})  # its sleep will be due while stopped
    send(port, "watch.order", {"order": "B-1", "timeout": 600})
    time.sleep(1)
    worker = worker_pid(dev.pid)
    os.kill(worker, signal.SIGSTOP)
    try:
        stalled = []
        for _ in range(25):
            stalled.append(send(port, "watch.slow", {"seconds": 0.1}))
            send(port, "watch.paid", {"order": "B-1"})
            time.sleep(1)
        for name in ("FerrymanOldestMessageOld", "FerrymanBacklogGrowing", "FerrymanTimersLate",
                     "FerrymanMatcherLagging"):  # fmt: skip
            prom.wait_firing(name, timeout=60)
    finally:
        os.kill(worker, signal.SIGCONT)

    # -- the worker catches up: the stalled runs end while Prometheus scrapes (a
    # histogram series whose observations all fall within one scrape has no rate)
    for event_id in stalled:
        wait_status(port, event_id, "COMPLETED", timeout=120)
    time.sleep(3 * float(SCRAPE.rstrip("s")))

    # -- every panel, every query, has data over the test
    empty = [(title, expr) for title, expr in panel_queries() if not prom.has_data(expr, start)]
    assert empty == [], empty
    shot = os.environ.get("FERRYMAN_SCREENSHOT_DIR")
    if shot:
        screenshot(prom, Path(shot))


SHOWN = ["Runs finished by status", "Runs by state", "Step attempts", "Backlog",
         "Oldest message age", "Timers"]  # fmt: skip


def screenshot(prom: Prom, folder: Path) -> None:
    """Prometheus's own graph page, one graph per panel in SHOWN, in headless chromium."""
    from playwright.sync_api import sync_playwright

    queries = [(t, e) for t, e in panel_queries() if t in SHOWN]
    params: dict[str, str] = {}
    for i, (_, expr) in enumerate(queries):
        params |= {f"g{i}.expr": expr, f"g{i}.tab": "0", f"g{i}.range_input": "3m",
                   f"g{i}.stacked": "0", f"g{i}.show_exemplars": "0"}  # fmt: skip
    url = f"{prom.base}/graph?{urllib.parse.urlencode(params)}"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        # one tall viewport instead of full_page (which timed out on these graphs)
        page = browser.new_page(viewport={"width": 1400, "height": 480 * len(queries) + 80})
        page.goto(url, wait_until="networkidle")
        # every graph shows "Load time" once its query answered
        page.wait_for_function(
            f"document.body.innerText.split('Load time').length > {len(queries)}",
            timeout=90_000,
        )
        page.wait_for_timeout(1000)
        # the page focuses (and scrolls to) the last query box; show it from the top
        page.evaluate("document.activeElement.blur(); window.scrollTo(0, 0)")
        page.wait_for_timeout(500)
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(
            path=str(folder / "prometheus-graphs.png"), timeout=120_000, animations="disabled"
        )
        browser.close()
