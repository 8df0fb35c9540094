"""`ferryman manifests -m MODULE` prints CRs the API server accepts, matching examples/k8s."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from kube import REPO, Kube

from conftest import NAMESPACE


def manifests(module: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ferryman_worker.cli", "manifests", "-m", module],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_generated_manifests_are_accepted(cluster: Kube, release: str) -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "ferryman_worker.cli", "--help"],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout
    if "manifests" not in help_text:
        pytest.skip("`ferryman manifests` is not implemented yet (worker CLI, issue 4 item 3)")
    for module in ("examples.video_processing", "examples.scheduled_jobs"):
        proc = manifests(module)
        assert proc.returncode == 0, proc.stderr
        docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
        kinds = {d["kind"] for d in docs}
        assert "DurableFunction" in kinds
        dry = cluster.kubectl(
            "-n", NAMESPACE, "apply", "--dry-run=server", "-f", "-", input=proc.stdout, check=False
        )
        assert dry.returncode == 0, dry.stderr
    video = [d for d in yaml.safe_load_all(manifests("examples.video_processing").stdout) if d]
    fn = next(d for d in video if d["kind"] == "DurableFunction")
    assert fn["metadata"]["name"] == "video-processing-process-video"
    assert fn["spec"]["code"] == {
        "module": "examples.video_processing",
        "function": "process_video",
    }
    assert fn["spec"]["triggers"] == [{"event": "video.uploaded"}]
