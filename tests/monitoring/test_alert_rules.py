"""`promtool test rules`: every alert fires in a scenario made for it and stays quiet in
one that looks like it but is healthy, with the production windows in virtual time."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.monitoring.tools import RULES, alert_rules, binary

# (alert, eval time, input series {series: values}, expected alerts' labels)
CASES: list[tuple[str, str, str, dict[str, str], list[dict[str, str]]]] = [
    (
        "a rare function failing every time",
        "FerrymanRunsFailing",
        "40m",
        {
            # workers export every function's counters at 0 from the start (metrics.py), so
            # a first failure is an increase
            'ferryman_runs_finished_total{function="rare",status="FAILED"}': "0x29 1x15",
            'ferryman_runs_finished_total{function="rare",status="COMPLETED"}': "0x45",
            'ferryman_runs_finished_total{function="busy",status="COMPLETED"}': "0+100x45",
            'ferryman_runs_finished_total{function="busy",status="FAILED"}': "0+1x45",
        },
        [{"function": "rare", "severity": "warning"}],
    ),
    (
        "a function whose failures are a few percent",
        "FerrymanRunsFailing",
        "40m",
        {
            'ferryman_runs_finished_total{function="busy",status="COMPLETED"}': "0+20x45",
            'ferryman_runs_finished_total{function="busy",status="FAILED"}': "0+1x45",
        },
        [],
    ),
    (
        "a backlog growing for 20 minutes",
        "FerrymanBacklogGrowing",
        "30m",
        {
            'ferryman_backlog_messages{function="slow",consumer="trigger"}': "0+10x40",
            'ferryman_backlog_messages{function="slow",consumer="work"}': "5x40",
        },
        [{"function": "slow", "severity": "warning"}],
    ),
    (
        "a backlog that is large but shrinking",
        "FerrymanBacklogGrowing",
        "30m",
        {'ferryman_backlog_messages{function="slow",consumer="trigger"}': "1000-10x40"},
        [],
    ),
    (
        "a message waiting for 20 minutes",
        "FerrymanOldestMessageOld",
        "20m",
        {
            'ferryman_backlog_oldest_age_seconds{function="stuck",consumer="work"}': "0+60x30",
            'ferryman_backlog_oldest_age_seconds{function="fine",consumer="work"}': "2x30",
        },
        [{"function": "stuck", "consumer": "work", "severity": "warning"}],
    ),
    (
        "messages that never wait long",
        "FerrymanOldestMessageOld",
        "20m",
        {'ferryman_backlog_oldest_age_seconds{function="fine",consumer="work"}': "0 3 1 0 5x30"},
        [],
    ),
    (
        "a timer overdue and growing",
        "FerrymanTimersLate",
        "15m",
        {'ferryman_timers_overdue_seconds{function="nap"}': "0+60x20"},
        [{"function": "nap", "severity": "warning"}],
    ),
    (
        "timers a few seconds late",
        "FerrymanTimersLate",
        "15m",
        {'ferryman_timers_overdue_seconds{function="nap"}': "0 2 1 0 3x20"},
        [],
    ),
    (
        "the matcher falling behind",
        "FerrymanMatcherLagging",
        "15m",
        {"ferryman_matcher_oldest_age_seconds": "0+60x20"},
        [{"severity": "warning"}],
    ),
    (
        "the matcher keeping up",
        "FerrymanMatcherLagging",
        "15m",
        {"ferryman_matcher_oldest_age_seconds": "0 1 0 2x20"},
        [],
    ),
    (
        "a worker down for 10 minutes",
        "FerrymanComponentDown",
        "10m",
        {
            'up{component="worker",instance="w1:9090",job="pods"}': "0x15",
            'up{component="gateway",instance="g1:8288",job="gw"}': "1x15",
            'up{job="someone-else",instance="x:1"}': "0x15",
        },
        [{"component": "worker", "instance": "w1:9090", "job": "pods", "severity": "critical"}],
    ),
    (
        "a gateway restarting for a minute",
        "FerrymanComponentDown",
        "10m",
        {'up{component="gateway",instance="g1:8288",job="gw"}': "1 1 1 0 1x12"},
        [],
    ),
]


def _render(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), template)


def _test_file(tmp_path: Path) -> Path:
    annotations = {str(r["alert"]): r["annotations"] for r in alert_rules()}
    tests: list[dict[str, Any]] = []
    for _, alert, at, series, expected in CASES:
        exp = [
            {
                "exp_labels": labels,
                "exp_annotations": {k: _render(v, labels) for k, v in annotations[alert].items()},
            }
            for labels in expected
        ]
        tests.append(
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series.items()],
                "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": exp}],
            }
        )
    path = tmp_path / "ferryman.rules.test.yaml"
    path.write_text(
        yaml.safe_dump(
            {"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": tests},
            sort_keys=False,
        )
    )
    return path


def test_every_alert_has_a_firing_and_a_quiet_case_and_a_runbook() -> None:
    alerts = {str(r["alert"]) for r in alert_rules()}
    firing = {alert for _, alert, _, _, expected in CASES if expected}
    quiet = {alert for _, alert, _, _, expected in CASES if not expected}
    assert alerts == firing == quiet
    for rule in alert_rules():
        assert "runbook" in rule["annotations"], rule["alert"]  # type: ignore[operator]
        assert "summary" in rule["annotations"], rule["alert"]  # type: ignore[operator]


def test_promtool_checks_the_rules() -> None:
    out = subprocess.run(
        [binary("promtool"), "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_unit_tests_pass(tmp_path: Path) -> None:
    out = subprocess.run(
        [binary("promtool"), "test", "rules", str(_test_file(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
