"""`ferryman manifests` prints what the CRDs accept, and a worker sees where CRs and code differ."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import yaml

from examples import await_payment, scheduled_jobs, video_processing
from ferryman_worker.kube.drift import compare
from ferryman_worker.kube.manifests import manifests

ROOT = Path(__file__).resolve().parents[2]


def k8s_example(name: str) -> list[dict[str, object]]:
    return [d for d in yaml.safe_load_all((ROOT / "examples/k8s" / name).read_text()) if d]


def test_manifests_match_the_hand_written_examples() -> None:
    for module, file in (
        (video_processing, "video-processing.yaml"),
        (scheduled_jobs, "scheduled-jobs.yaml"),
    ):
        generated = manifests([module.fm], module, None, None)
        written = [d for d in k8s_example(file) if d["kind"] == "DurableFunction"]
        by_name = {d["metadata"]["name"]: d["spec"] for d in generated}
        for doc in written:
            spec = by_name[doc["metadata"]["name"]]
            assert spec["code"] == doc["spec"]["code"]
            assert spec["triggers"] == doc["spec"]["triggers"]
            assert spec["workerPool"] == doc["spec"]["workerPool"]


def test_the_cli_prints_yaml_with_a_worker_pool_when_given_an_image() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ferryman_worker.cli",
            "manifests",
            "-m",
            "examples.bookings",
            "--image",
            "registry.example/bookings:1",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert docs[0]["kind"] == "WorkerPool"
    assert docs[0]["spec"] == {
        "image": "registry.example/bookings:1",
        "module": "examples.bookings",
        "replicas": 1,
    }
    functions = {d["metadata"]["name"]: d["spec"] for d in docs[1:]}
    failure = functions["bookings-process-booking-failure"]
    assert failure["code"]["function"] == "process_booking.on_failure"
    assert failure["retries"] == 0


def test_a_missing_module_is_a_clear_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ferryman_worker.cli", "manifests", "-m", "no.such.module"],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode != 0
    assert "cannot import 'no.such.module'" in proc.stderr


def test_matching_resources_give_no_warnings() -> None:
    docs = manifests([video_processing.fm], video_processing, "video-processing", None)
    assert compare([video_processing.fm], video_processing, "video-processing", docs) == []


def test_a_worker_names_every_disagreement() -> None:
    docs = manifests([scheduled_jobs.fm], scheduled_jobs, "scheduled-jobs", None)
    changed = copy.deepcopy(docs)
    changed[0]["spec"]["triggers"] = [{"cron": "0 10 * * *"}]
    changed[1]["spec"]["retries"] = 9
    dropped = changed.pop()
    stray = copy.deepcopy(changed[0])
    stray["metadata"]["name"] = stray["spec"]["functionId"] = "scheduled-jobs-gone"

    warnings = compare([scheduled_jobs.fm], scheduled_jobs, "scheduled-jobs", [*changed, stray])

    text = "\n".join(warnings)
    assert f"{changed[0]['metadata']['name']} disagrees with the code: triggers" in text
    assert f"{changed[1]['metadata']['name']} disagrees with the code: retries" in text
    assert f"function {dropped['metadata']['name']} has no DurableFunction" in text
    assert "scheduled-jobs-gone names pool scheduled-jobs but module" in text
    assert "ferryman manifests -m examples.scheduled_jobs" in text
    assert len(warnings) == 4


def test_webhooks_in_code_become_webhook_resources() -> None:
    docs = manifests([await_payment.fm], await_payment, None, None)
    [hook] = [d for d in docs if d["kind"] == "Webhook"]
    assert hook["metadata"] == {"name": "stripe-payments"}
    assert hook["spec"]["verification"] == {
        "type": "stripe", "secretEnv": "STRIPE_WEBHOOK_SECRET", "tolerance": "5m",
    }  # fmt: skip
    assert "payment.completed" in hook["spec"]["transform"]
