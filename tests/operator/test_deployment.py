from ferryman_operator import deployment as dep
from ferryman_operator.settings import OperatorSettings

POOL = {
    "metadata": {"name": "video", "namespace": "apps", "uid": "u-1"},
    "spec": {
        "image": "registry.example.com/video:1",
        "module": "examples.video_processing",
        "env": [{"name": "LOG_LEVEL", "value": "debug"}],
        "resources": {"requests": {"cpu": "100m"}},
        "podLabels": {"team": "media"},
    },
}


def test_deployment_is_owned_and_runs_the_module() -> None:
    settings = OperatorSettings(
        nats_url="nats://nats:4222",
        worker_service_account="ferryman-worker",
        worker_env_secret="ferryman-worker-env",
    )
    d = dep.build(POOL, settings, replicas=2)
    assert d["metadata"]["name"] == "video-workers"
    owner = d["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("WorkerPool", "u-1", True)
    assert d["spec"]["replicas"] == 2
    pod = d["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "ferryman-worker"
    assert pod["terminationGracePeriodSeconds"] == 300
    c = pod["containers"][0]
    assert c["args"] == ["worker", "-m", "examples.video_processing"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["FERRYMAN_NATS_URL"] == "nats://nats:4222"
    assert env["LOG_LEVEL"] == "debug"
    # running steps may finish until just before the kubelet's SIGKILL
    assert env["FERRYMAN_SHUTDOWN_GRACE"] == "295"
    assert c["envFrom"][0] == {"secretRef": {"name": "ferryman-worker-env", "optional": True}}
    assert d["spec"]["template"]["metadata"]["labels"]["team"] == "media"
    assert d["spec"]["selector"]["matchLabels"] == {dep.POOL_LABEL: "video"}


def test_pool_service_account_wins() -> None:
    pool = {**POOL, "spec": {**POOL["spec"], "serviceAccountName": "mine"}}
    d = dep.build(pool, OperatorSettings(worker_service_account="chart"), replicas=0)
    assert d["spec"]["template"]["spec"]["serviceAccountName"] == "mine"
