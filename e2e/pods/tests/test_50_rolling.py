"""A rolling update of the worker image while runs sleep: they resume on the new pods."""

from __future__ import annotations

import json
import subprocess

from kube import Kube, wait_for

from conftest import HERE, NAMESPACE, Ledger, completed, images, pool_pods, run_of, send


def test_runs_sleeping_through_a_rolling_update_resume_on_new_pods(
    cluster: Kube, gateway: str, app: str, ledger: Ledger
) -> None:
    old = images()["APP_IMAGE"]
    new = old.rsplit(":", 1)[0] + ":e2e-v2"
    subprocess.run(["docker", "tag", old, new], check=True)
    subprocess.run([str(HERE.parent / "load-images.sh"), new], check=True)
    # keep one pod up so the update rolls (old pod replaced by a new one)
    cluster.kubectl(
        "-n",
        NAMESPACE,
        "patch",
        "workerpool",
        app,
        "--type=merge",
        "-p",
        json.dumps(
            {
                "spec": {
                    "autoscaling": {
                        "min": 1,
                        "max": 3,
                        "targetBacklogPerReplica": 2,
                        "scaleDownDelay": "5s",
                    }
                }
            }
        ),
    )
    runs = [
        str(run_of(gateway, send(gateway, "e2e.sleep", {"seconds": 40}))["run_id"])
        for _ in range(3)
    ]
    for run_id in runs:
        wait_for(
            "the run to reach its sleep",
            lambda r=run_id: ledger.pods(r, "before"),
            timeout=240,
            interval=1,
        )
    old_pods = {p["metadata"]["name"] for p in pool_pods(cluster, app)}
    cluster.kubectl(
        "-n",
        NAMESPACE,
        "patch",
        "workerpool",
        app,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"image": new}}),
    )
    images_of: dict[str, str] = {}

    def rolled() -> bool:
        for p in pool_pods(cluster, app):
            images_of[p["metadata"]["name"]] = p["spec"]["containers"][0]["image"]
        dep = cluster.get("-n", NAMESPACE, "deploy", f"{app}-workers")
        st = dep.get("status", {})
        return (
            dep["spec"]["template"]["spec"]["containers"][0]["image"] == new
            and st.get("updatedReplicas", 0) == st.get("replicas", -1)
            and st.get("replicas") == st.get("availableReplicas")
        )

    wait_for("the rollout of the new image", rolled, timeout=180, interval=1)
    for run_id in runs:
        assert not ledger.pods(run_id, "after"), "a run woke before the rollout finished"
    for run_id in runs:
        completed(gateway, run_id, timeout=240)
        for p in pool_pods(cluster, app):
            images_of[p["metadata"]["name"]] = p["spec"]["containers"][0]["image"]
    for run_id in runs:
        rows = ledger.rows(run_id)
        assert ledger.count(run_id, "before") == 1, rows
        [after] = ledger.pods(run_id, "after")
        assert after not in old_pods, (after, old_pods)
        assert images_of.get(after) == new, (after, images_of)
    cluster.kubectl(
        "-n",
        NAMESPACE,
        "patch",
        "workerpool",
        app,
        "--type=merge",
        "-p",
        json.dumps(
            {
                "spec": {
                    "autoscaling": {
                        "min": 0,
                        "max": 3,
                        "targetBacklogPerReplica": 2,
                        "scaleDownDelay": "5s",
                    }
                }
            }
        ),
    )
