"""A WorkerPool's Deployment follows the backlog up, holds for work in flight, and goes to zero."""

from __future__ import annotations

from jetstream import consumer_info, fetch, publish
from kube import Kube, wait_for

from conftest import NAMESPACE
from ferryman_jetstream import WORK_STREAM
from ferryman_jetstream.subjects import work_subject

VIDEO = "video-processing-process-video"
POOL = "video-processing"
DEPLOYMENT = "video-processing-workers"


def replicas(cluster: Kube) -> int:
    return int(cluster.get("-n", NAMESPACE, "deployment", DEPLOYMENT)["spec"]["replicas"])


def test_replicas_follow_the_backlog(
    cluster: Kube, nats_url: str, applied_examples: list[str]
) -> None:
    # Short delays for the test; the example's 60s scale-down delay is for real use.
    cluster.kubectl(
        "-n",
        NAMESPACE,
        "patch",
        "workerpool",
        POOL,
        "--type=merge",
        "-p",
        '{"spec": {"autoscaling": {"scaleDownDelay": "2s"}}}',
    )
    wait_for("pool idle at 0", lambda: replicas(cluster) == 0, timeout=30)

    publish(nats_url, work_subject(VIDEO), 35)  # 35 jobs, 10 per replica -> 4
    wait_for("4 replicas for 35 jobs", lambda: replicas(cluster) == 4, timeout=30)
    pool = cluster.get("-n", NAMESPACE, "workerpool", POOL)
    assert pool["status"]["backlog"] == 35
    assert pool["status"]["desiredReplicas"] == 4
    dfn = wait_for(
        "backlog on the function",
        lambda: (
            (o := cluster.get("-n", NAMESPACE, "dfn", VIDEO))["status"].get("backlog") == 35 and o
        ),
        timeout=30,
    )
    assert dfn["status"]["backlog"] == 35

    # Workers take all 35 and finish 32; 3 are still running (ack-pending).
    assert fetch(nats_url, WORK_STREAM, f"work-{VIDEO}", 35, ack=32) == 35
    info = consumer_info(nats_url, WORK_STREAM, f"work-{VIDEO}")
    assert (info.num_pending, info.num_ack_pending) == (0, 3)
    # The backlog alone wants 1 replica, but 3 jobs are in flight: never below 3.
    wait_for("3 replicas while 3 jobs run", lambda: replicas(cluster) == 3, timeout=30)
    pool = wait_for(
        "WorkInFlight reason",
        lambda: (
            (o := cluster.get("-n", NAMESPACE, "workerpool", POOL))["status"].get("inFlight") == 3
            and o
        ),
        timeout=30,
    )
    assert replicas(cluster) == 3

    events = cluster.get(
        "-n", NAMESPACE, "events", "--field-selector", f"involvedObject.name={POOL}"
    )["items"]
    assert any(e.get("reason") == "ScaledUp" for e in events)
    assert any(e.get("reason") == "ScaledDown" for e in events)


def test_pool_drains_to_zero(cluster: Kube, nats_url: str, applied_examples: list[str]) -> None:
    # The 3 held jobs are redelivered after AckWait (60s); shorten it so this test is quick.
    cluster.kubectl(
        "-n",
        NAMESPACE,
        "patch",
        "dfn",
        VIDEO,
        "--type=merge",
        "-p",
        '{"spec": {"delivery": {"ackWait": "2s"}}}',
    )
    wait_for(
        "ack wait 2s",
        lambda: (
            (i := consumer_info(nats_url, WORK_STREAM, f"work-{VIDEO}")) and i.config.ack_wait == 2
        ),
        timeout=30,
    )

    def drained() -> bool:
        info = consumer_info(nats_url, WORK_STREAM, f"work-{VIDEO}")
        held = info.num_pending + info.num_ack_pending
        if held:  # take what is (re)delivered and finish it
            fetch(nats_url, WORK_STREAM, f"work-{VIDEO}", held, ack=held, wait=2)
        info = consumer_info(nats_url, WORK_STREAM, f"work-{VIDEO}")
        return info.num_pending == 0 and info.num_ack_pending == 0

    wait_for("every job acked", drained, timeout=60, interval=1)
    wait_for("the pool back at zero replicas", lambda: replicas(cluster) == 0, timeout=30)
    pool = cluster.get("-n", NAMESPACE, "workerpool", POOL)
    assert pool["status"]["backlog"] == 0
    cluster.kubectl(
        "-n",
        NAMESPACE,
        "patch",
        "dfn",
        VIDEO,
        "--type=merge",
        "-p",
        '{"spec": {"delivery": {"ackWait": "60s"}}}',
    )
