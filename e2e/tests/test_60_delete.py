"""Deleting a DurableFunction removes its consumers (finalizer); a WorkerPool's Deployment is
garbage-collected with it."""

from __future__ import annotations

from jetstream import consumer_info, with_js
from kube import Kube, wait_for

from conftest import NAMESPACE
from ferryman_jetstream import EVENTS_STREAM, TIMERS_STREAM, WORK_STREAM
from ferryman_jetstream.schedules import cron_definitions

REMINDER = "scheduled-jobs-send-subscription-reminder"
CLEANUP = "scheduled-jobs-monthly-cleanup"


def test_deleting_a_function_removes_its_consumers(
    cluster: Kube, nats_url: str, applied_examples: list[str]
) -> None:
    assert consumer_info(nats_url, EVENTS_STREAM, f"trigger-{REMINDER}")
    cluster.kubectl("-n", NAMESPACE, "delete", "dfn", REMINDER, "--timeout=60s")
    assert not cluster.exists("-n", NAMESPACE, "dfn", REMINDER)
    for stream, name in [
        (EVENTS_STREAM, f"trigger-{REMINDER}"),
        (WORK_STREAM, f"work-{REMINDER}"),
        (TIMERS_STREAM, f"timers-{REMINDER}"),
    ]:
        assert consumer_info(nats_url, stream, name) is None, name


def test_deleting_a_cron_function_removes_its_schedule(
    cluster: Kube, nats_url: str, applied_examples: list[str]
) -> None:
    assert with_js(nats_url, lambda js: cron_definitions(js, CLEANUP)) == ["0 0 3 1 * *"]
    cluster.kubectl("-n", NAMESPACE, "delete", "dfn", CLEANUP, "--timeout=60s")
    assert with_js(nats_url, lambda js: cron_definitions(js, CLEANUP)) == []
    assert consumer_info(nats_url, TIMERS_STREAM, f"timers-{CLEANUP}") is None


def test_pool_count_follows_and_deployment_is_garbage_collected(
    cluster: Kube, applied_examples: list[str]
) -> None:
    wait_for(
        "scheduled-jobs pool to count 2 functions",
        lambda: (
            cluster.get("-n", NAMESPACE, "workerpool", "scheduled-jobs")["status"].get(
                "functionCount"
            )
            == 2
        ),
        timeout=30,
    )
    assert cluster.exists("-n", NAMESPACE, "deployment", "scheduled-jobs-workers")
    cluster.kubectl("-n", NAMESPACE, "delete", "workerpool", "scheduled-jobs", "--timeout=60s")
    wait_for(
        "the Deployment to be garbage-collected",
        lambda: not cluster.exists("-n", NAMESPACE, "deployment", "scheduled-jobs-workers"),
        timeout=60,
    )
    # Its functions now say their pool is gone.
    wait_for(
        "WorkerPoolNotFound on the remaining functions",
        lambda: all(
            c.get("reason") == "WorkerPoolNotFound"
            for i in cluster.get("-n", NAMESPACE, "dfn")["items"]
            if i["spec"]["workerPool"] == "scheduled-jobs"
            for c in i["status"]["conditions"]
            if c["type"] == "Ready"
        ),
        timeout=30,
    )
