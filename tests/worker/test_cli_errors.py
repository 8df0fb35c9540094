"""A user's mistake prints one clear line, never a traceback (unless --debug)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

GOOD = """
import ferryman
fm = ferryman.Ferryman(app_id="cli")

@fm.function(id="ok", trigger=ferryman.on_event("a"))
async def ok(ctx): return 1
"""


def ferryman_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ferryman_worker.cli", *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("source", "says"),
    [
        (GOOD + "def broken(:\n", "has a syntax error: "),
        (GOOD.replace('id="ok"', 'id="Not_OK"'), "'Not_OK' is not a valid function id"),
        (GOOD.replace('on_event("a")', 'on_event("a b")'), "contains whitespace"),
        (GOOD.replace('on_event("a")', 'on_cron("0 25 * * *")'), "the hour field '25'"),
        (GOOD + "raise RuntimeError('no config file')\n", "RuntimeError: no config file"),
        (GOOD + "import not_installed_anywhere\n", "is 'not_installed_anywhere' installed?"),
    ],
)
def test_a_broken_app_is_one_clear_line_naming_where(
    tmp_path: Path, source: str, says: str
) -> None:
    (tmp_path / "userapp.py").write_text(source)
    result = ferryman_cli(tmp_path, "manifests", "-m", "userapp")
    assert result.returncode == 1
    assert says in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3, result.stderr
    if "syntax" in says or "RuntimeError" in says:
        assert "userapp.py" in result.stderr, "names the file"


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "userapp.py").write_text(GOOD)
    result = ferryman_cli(
        tmp_path, "migrate", "--debug", "--database-url", "postgresql://127.0.0.1:1/x"
    )
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    plain = ferryman_cli(tmp_path, "migrate", "--database-url", "postgresql://127.0.0.1:1/x")
    assert plain.returncode == 1
    assert "Traceback" not in plain.stderr
    assert plain.stderr.startswith("error: ")
    assert "--debug" in plain.stderr
