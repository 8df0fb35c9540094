"""Bad settings stop the operator at start-up with a message naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

from kube import REPO


def test_bad_settings_are_named() -> None:
    env = {**os.environ, "FERRYMAN_NATS_URL": "http://nats:4222", "FERRYMAN_SCALE_INTERVAL": "-1"}
    proc = subprocess.run(
        [sys.executable, "-m", "ferryman_operator"],
        check=False,
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "FERRYMAN_NATS_URL" in proc.stderr
    assert "is not a NATS URL" in proc.stderr
    assert "FERRYMAN_SCALE_INTERVAL" in proc.stderr
    assert "Traceback" not in proc.stderr
