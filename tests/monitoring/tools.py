"""Where the monitoring tests find Prometheus, promtool and the files they check."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "charts" / "ferryman" / "rules" / "ferryman.rules.yaml"
DASHBOARD = ROOT / "charts" / "ferryman" / "dashboards" / "ferryman.json"


def binary(name: str) -> str:
    """The Debian ``prometheus`` package's binary; CI (FERRYMAN_REQUIRE_MONITORING=1, set
    by .ci/run, which installs it) fails without it, a laptop skips."""
    found = shutil.which(name)
    if found:
        return found
    if os.environ.get("FERRYMAN_REQUIRE_MONITORING"):
        pytest.fail(f"{name} not found: .ci/install-monitoring.sh installs it")
    pytest.skip(f"{name} not installed (apt-get install prometheus, or .ci/install-monitoring.sh)")


def jaeger() -> str:
    """The Jaeger v2 all-in-one, built from the Go module proxy once by
    .ci/build-jaeger.sh (cached in ~/.cache/ferryman-otel); without Go, CI
    (FERRYMAN_REQUIRE_MONITORING=1) fails, a laptop skips."""
    if not shutil.which("go") and not Path("/usr/local/go/bin/go").exists():
        if os.environ.get("FERRYMAN_REQUIRE_MONITORING"):
            pytest.fail("go not found: the traces test builds Jaeger with it")
        pytest.skip("go not installed: the traces test builds Jaeger with it")
    built = subprocess.run(
        [str(ROOT / ".ci" / "build-jaeger.sh")], capture_output=True, text=True, check=False
    )
    if built.returncode != 0:
        pytest.fail(f".ci/build-jaeger.sh failed:\n{built.stderr[-3000:]}")
    return built.stdout.strip()


def alert_rules() -> list[dict[str, object]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [r for g in groups for r in g["rules"] if "alert" in r]
