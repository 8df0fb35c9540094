"""An event sent to the gateway Service runs to COMPLETED in a worker pod: the example app
(examples/k8s/video-processing.yaml, image swapped for the local build) and the e2e app,
both scaled up from zero pods by their backlog."""

from __future__ import annotations

import yaml
from kube import REPO, Kube, wait_for

from conftest import NAMESPACE, completed, images, pool_pods, run_of, send


def test_the_video_example_completes_in_a_pod(cluster: Kube, gateway: str) -> None:
    docs = list(yaml.safe_load_all((REPO / "examples/k8s/video-processing.yaml").read_text()))
    for doc in docs:
        if doc["kind"] == "WorkerPool":
            doc["spec"]["image"] = images()["EXAMPLES_IMAGE"]
            doc["spec"]["imagePullPolicy"] = "IfNotPresent"
            # the example's stand-in services keep their ledger in a file: the root is read-only
            doc["spec"]["env"].append(
                {"name": "FERRYMAN_EXAMPLES_LEDGER", "value": "/tmp/examples-ledger.jsonl"}
            )
    cluster.kubectl("-n", NAMESPACE, "apply", "-f", "-", input=yaml.safe_dump_all(docs))
    cluster.kubectl(
        "-n",
        NAMESPACE,
        "wait",
        "--for=condition=Ready",
        "dfn/video-processing-process-video",
        "--timeout=120s",
        timeout=130,
    )
    event = send(gateway, "video.uploaded", {"videoId": "v-pods", "url": "s3://videos/v-pods.mp4"})
    run = run_of(gateway, event)
    detail = completed(gateway, run["run_id"], timeout=300)
    assert [s["id"] for s in detail["steps"]] == ["transcribe", "summarize", "write-to-db"]
    assert detail["output"]["videoId"] == "v-pods"
    pods = pool_pods(cluster, "video-processing")
    assert pods, "the run completed, yet no worker pod of the pool exists"
    # drained: the pool goes back to zero pods
    cluster.kubectl(
        "-n",
        NAMESPACE,
        "patch",
        "workerpool",
        "video-processing",
        "--type=merge",
        "-p",
        '{"spec": {"autoscaling": {"scaleDownDelay": "5s"}}}',
    )
    wait_for(
        "the video pool back at 0 replicas",
        lambda: (
            cluster.get("-n", NAMESPACE, "deploy", "video-processing-workers")["spec"]["replicas"]
            == 0
        ),
        timeout=120,
    )


def test_an_event_runs_in_a_worker_pod(cluster: Kube, gateway: str, app: str, ledger) -> None:  # type: ignore[no-untyped-def]
    event = send(gateway, "e2e.durable", {"seconds": 1})
    run = run_of(gateway, event)
    detail = completed(gateway, run["run_id"], timeout=300)
    # each step ran in a pod of the pool's Deployment (HOSTNAME is the pod's name)
    for step in ("first", "long", "last"):
        assert detail["output"][step].startswith(f"{app}-workers-"), detail["output"]
    for step in ("first", "long:start", "long:done", "last"):
        assert ledger.count(run["run_id"], step) == 1, ledger.rows(run["run_id"])
