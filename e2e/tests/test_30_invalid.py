"""Each invalid CR under e2e/invalid/ is rejected by the API server with its expected message."""

from __future__ import annotations

from pathlib import Path

import pytest
from kube import REPO, Kube

from conftest import NAMESPACE

CASES = sorted((REPO / "e2e/invalid").glob("*.yaml"))


def expected(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: first line must be '# expect: ...'"
    return first.removeprefix("# expect: ")


def test_there_are_a_dozen_or_more() -> None:
    assert len(CASES) >= 12


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_invalid_resource_is_rejected(cluster: Kube, release: str, path: Path) -> None:
    proc = cluster.kubectl("-n", NAMESPACE, "apply", "-f", str(path), check=False)
    assert proc.returncode != 0, f"{path.name} was accepted:\n{proc.stdout}"
    assert expected(path) in proc.stderr, proc.stderr
    assert "is invalid" in proc.stderr
