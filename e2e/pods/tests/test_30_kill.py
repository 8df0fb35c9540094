"""A worker killed mid-step (its pod force-deleted, or its process killed with SIGKILL): the
run finishes on another worker and no completed step runs again (counted in the ledger)."""

from __future__ import annotations

import os
import signal
import subprocess

from kube import Kube, wait_for

from conftest import NAMESPACE, Ledger, completed, pool_pods, run_of, send


def start_long_run(gateway: str, ledger: Ledger) -> tuple[str, str]:
    """A durable run whose long step has started; (run id, the pod running it)."""
    run_id = str(run_of(gateway, send(gateway, "e2e.durable", {"seconds": 40}))["run_id"])
    [pod] = wait_for(
        "the long step to start in a pod",
        lambda: ledger.pods(run_id, "long:start"),
        timeout=240,
        interval=1,
    )
    assert ledger.count(run_id, "first") == 1
    return run_id, pod


def assert_no_completed_step_ran_again(ledger: Ledger, run_id: str) -> None:
    rows = ledger.rows(run_id)
    assert ledger.count(run_id, "first") == 1, rows
    assert ledger.count(run_id, "long:done") == 1, rows
    assert ledger.count(run_id, "last") == 1, rows
    assert ledger.count(run_id, "long:start") == 2, (
        rows
    )  # the killed attempt and the one that finished


def test_force_deleting_the_pod_mid_step(
    cluster: Kube, gateway: str, app: str, ledger: Ledger
) -> None:
    run_id, pod = start_long_run(gateway, ledger)
    cluster.kubectl("-n", NAMESPACE, "delete", "pod", pod, "--force", "--grace-period=0")
    completed(gateway, run_id, timeout=300)
    assert_no_completed_step_ran_again(ledger, run_id)
    [finisher] = ledger.pods(run_id, "long:done")
    assert finisher != pod, "the deleted pod finished the step"
    assert ledger.pods(run_id, "last") == [finisher]


def container_pid(cluster: Kube, pod: str) -> tuple[int, int]:
    """(host pid of the pod's worker process, the container's restart count)."""
    status = cluster.get("-n", NAMESPACE, "pod", pod)["status"]["containerStatuses"][0]
    container_id = status["containerID"].split("://", 1)[1]
    sock = "/run/ferryman-e2e/containerd.sock"
    out = subprocess.run(
        ["ctr", "-a", sock, "-n", "k8s.io", "tasks", "ls"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for line in out.splitlines()[1:]:
        task, pid, *_ = line.split()
        if task == container_id:
            return int(pid), int(status["restartCount"])
    raise AssertionError(f"no task for {container_id} in:\n{out}")


def test_kill_9_of_the_worker_process_mid_step(
    cluster: Kube, gateway: str, app: str, ledger: Ledger
) -> None:
    run_id, pod = start_long_run(gateway, ledger)
    pid, restarts = container_pid(cluster, pod)
    os.kill(pid, signal.SIGKILL)
    completed(gateway, run_id, timeout=300)
    assert_no_completed_step_ran_again(ledger, run_id)
    # the killed container was restarted in place by the kubelet (or its pod is gone)
    pods = {p["metadata"]["name"]: p for p in pool_pods(cluster, app)}
    if pod in pods:
        assert pods[pod]["status"]["containerStatuses"][0]["restartCount"] > restarts
