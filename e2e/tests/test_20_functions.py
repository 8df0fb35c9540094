"""DurableFunctions become JetStream consumers and schedules; status says so; drift is undone."""

from __future__ import annotations

from typing import Any

from jetstream import consumer_info, delete_consumer, with_js
from kube import Kube, condition, wait_for

from conftest import FULLNAME, NAMESPACE, Operator
from ferryman_jetstream import EVENTS_STREAM, TIMERS_STREAM, WORK_STREAM
from ferryman_jetstream.schedules import cron_definitions
from ferryman_jetstream.subjects import cron_definition_subject

VIDEO = "video-processing-process-video"
CRON = "scheduled-jobs-daily-report"
FUNCTIONS = [
    VIDEO,
    CRON,
    "scheduled-jobs-weekly-subscription-check",
    "scheduled-jobs-send-subscription-reminder",
    "scheduled-jobs-monthly-cleanup",
]


def all_ready(cluster: Kube) -> list[dict[str, Any]] | None:
    items = cluster.get("-n", NAMESPACE, "dfn")["items"]
    if len(items) == len(FUNCTIONS) and all(
        condition(i, "Ready").get("status") == "True" for i in items
    ):
        return items
    return None


def test_functions_become_ready(cluster: Kube, applied_examples: list[str]) -> None:
    items = wait_for("every DurableFunction Ready", lambda: all_ready(cluster), timeout=60)
    for item in items:
        status = item["status"]
        assert status["observedGeneration"] == item["metadata"]["generation"]
        assert condition(item, "ConsumersReady")["status"] == "True"
        assert condition(item, "ScheduleReady")["status"] == "True"
        assert "ferryman.dev/jetstream-cleanup" in item["metadata"]["finalizers"]
    table = cluster.kubectl("-n", NAMESPACE, "get", "dfn").stdout
    print(table)
    header = table.splitlines()[0].split()
    assert header[:6] == ["NAME", "READY", "TRIGGERS", "POOL", "BACKLOG", "REASON"]
    row = next(line for line in table.splitlines() if line.startswith(VIDEO)).split()
    assert row[1:6] == ["True", "video.uploaded", "video-processing", "0", "Reconciled"]
    cron_row = next(line for line in table.splitlines() if line.startswith(CRON))
    assert "cron(0 9 * * * Europe/Paris)" in cron_row


def test_consumers_exist_with_the_spec_settings(nats_url: str, applied_examples: list[str]) -> None:
    trigger = consumer_info(nats_url, EVENTS_STREAM, f"trigger-{VIDEO}")
    work = consumer_info(nats_url, WORK_STREAM, f"work-{VIDEO}")
    timers = consumer_info(nats_url, TIMERS_STREAM, f"timers-{VIDEO}")
    assert trigger
    assert work
    assert timers
    assert trigger.config.filter_subjects == ["ferryman.events.video.uploaded"]
    # The concurrency limit (20) is the workers' admission stage's, not MaxAckPending's
    # (which applies per consumer, so it allowed three times the limit).
    assert work.config.max_ack_pending == 1000
    # Events sent after `kubectl apply` and before the operator reconciled still run.
    assert trigger.config.deliver_policy == "by_start_time"
    assert trigger.config.opt_start_time is not None
    assert work.config.ack_wait == 60  # delivery.ackWait 60s
    # A cron-only function has no trigger consumer but its schedule is armed.
    assert consumer_info(nats_url, EVENTS_STREAM, f"trigger-{CRON}") is None
    assert consumer_info(nats_url, TIMERS_STREAM, f"timers-{CRON}")
    specs = with_js(nats_url, lambda js: cron_definitions(js, CRON))
    assert specs == ["0 0 9 * * *"]


def test_status_and_deployments_of_pools(cluster: Kube, applied_examples: list[str]) -> None:
    def pools_ready() -> list[dict[str, Any]] | None:
        items = cluster.get("-n", NAMESPACE, "workerpools")["items"]
        ok = [i for i in items if condition(i, "Ready").get("status") == "True"]
        counted = all(
            i["status"].get("functionCount") == 4
            for i in items
            if i["metadata"]["name"] == "scheduled-jobs" and "status" in i
        )
        # The pools turn Ready before the operator's next pass has counted every function.
        return items if len(ok) == 2 and counted else None

    items = {i["metadata"]["name"]: i for i in wait_for("WorkerPools Ready", pools_ready)}
    assert items["scheduled-jobs"]["status"]["functionCount"] == 4
    assert items["video-processing"]["status"]["desiredReplicas"] == 0  # idle, min 0
    dep = cluster.get("-n", NAMESPACE, "deployment", "video-processing-workers")
    owner = dep["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == (
        "WorkerPool",
        "video-processing",
        True,
    )
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == f"{FULLNAME}-worker"
    assert pod["containers"][0]["args"] == ["worker", "-m", "examples.video_processing"]
    fixed = cluster.get("-n", NAMESPACE, "deployment", "scheduled-jobs-workers")
    assert fixed["spec"]["replicas"] == 1
    print(cluster.kubectl("-n", NAMESPACE, "get", "workerpools").stdout)


def test_a_consumer_deleted_by_hand_comes_back(
    cluster: Kube, nats_url: str, operator: Operator, applied_examples: list[str]
) -> None:
    wait_for("ready", lambda: all_ready(cluster), timeout=60)
    cron_seq = cron_definition_seq(nats_url)
    delete_consumer(nats_url, WORK_STREAM, f"work-{VIDEO}")
    assert consumer_info(nats_url, WORK_STREAM, f"work-{VIDEO}") is None
    info = wait_for(
        "the work consumer to come back",
        lambda: consumer_info(nats_url, WORK_STREAM, f"work-{VIDEO}"),
        timeout=30,
    )
    assert info.config.ack_wait == 60  # delivery.ackWait 60s, as the spec says

    def drift_event() -> bool:
        events = cluster.get(
            "-n", NAMESPACE, "events", "--field-selector", f"involvedObject.name={VIDEO}"
        )["items"]
        return any(e.get("reason") == "DriftCorrected" for e in events)

    wait_for("a DriftCorrected event on the DurableFunction", drift_event, timeout=30)
    # Drift checks do not re-publish cron definitions JetStream already holds.
    assert cron_definition_seq(nats_url) == cron_seq


def cron_definition_seq(nats_url: str) -> int:
    async def last(js: Any) -> int:
        msg = await js.get_last_msg(TIMERS_STREAM, cron_definition_subject(CRON, 0))
        return int(msg.seq)

    return with_js(nats_url, last)


def test_a_spec_change_updates_the_consumer(
    cluster: Kube, nats_url: str, applied_examples: list[str]
) -> None:
    cluster.kubectl(
        "-n",
        NAMESPACE,
        "patch",
        "dfn",
        VIDEO,
        "--type=merge",
        "-p",
        '{"spec": {"delivery": {"maxAckPending": 7}}}',
    )

    def updated() -> bool:
        info = consumer_info(nats_url, WORK_STREAM, f"work-{VIDEO}")
        return bool(info and info.config.max_ack_pending == 7)

    wait_for("max_ack_pending 7 on the work consumer", updated, timeout=30)
    obj = wait_for(
        "observedGeneration to follow",
        lambda: (
            (o := cluster.get("-n", NAMESPACE, "dfn", VIDEO))["status"].get("observedGeneration")
            == o["metadata"]["generation"]
            and o
        ),
    )
    assert condition(obj, "Ready")["status"] == "True"
    cluster.kubectl(
        "-n",
        NAMESPACE,
        "patch",
        "dfn",
        VIDEO,
        "--type=merge",
        "-p",
        '{"spec": {"delivery": {"maxAckPending": null}}}',
    )
    wait_for(
        "max_ack_pending back to the default",
        lambda: (
            (i := consumer_info(nats_url, WORK_STREAM, f"work-{VIDEO}"))
            and i.config.max_ack_pending == 1000
        ),
        timeout=30,
    )


def test_function_id_is_immutable(cluster: Kube, applied_examples: list[str]) -> None:
    proc = cluster.kubectl(
        "-n",
        NAMESPACE,
        "patch",
        "dfn",
        VIDEO,
        "--type=merge",
        "-p",
        '{"spec": {"functionId": "something-else"}}',
        check=False,
    )
    assert proc.returncode != 0
    assert "functionId cannot be added, changed or removed" in proc.stderr


def test_a_function_whose_pool_is_missing_says_so(
    cluster: Kube, applied_examples: list[str]
) -> None:
    manifest = """
apiVersion: ferryman.dev/v1alpha1
kind: DurableFunction
metadata: {name: orphan}
spec:
  code: {module: examples.video_processing, function: process_video}
  workerPool: no-such-pool
  triggers: [{event: orphan.happened}]
"""
    cluster.kubectl("-n", NAMESPACE, "apply", "-f", "-", input=manifest)
    obj = wait_for(
        "Ready=False WorkerPoolNotFound",
        lambda: (
            (o := cluster.get("-n", NAMESPACE, "dfn", "orphan"))
            and condition(o, "Ready").get("reason") == "WorkerPoolNotFound"
            and o
        ),
    )
    assert "no-such-pool" in condition(obj, "Ready")["message"]
    assert condition(obj, "ConsumersReady")["status"] == "True"
    cluster.kubectl("-n", NAMESPACE, "delete", "dfn", "orphan", "--timeout=60s")
