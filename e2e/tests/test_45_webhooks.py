"""Webhook resources on the control plane: the operator (chart's ServiceAccount) compiles each
Webhook and hands it to the gateway through JetStream; a signed delivery to the gateway
(a local process with the chart's gateway ServiceAccount) becomes an event; status shows the
path, the last delivery and the last error; a transform that does not compile is reported
as Ready=False and the gateway keeps serving the last valid one; structural mistakes are
refused by the API server (e2e/invalid/17-19); deleting the resource stops the endpoint."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kube import REPO, Kube, condition, free_port, wait_for
from test_50_runs import API_TOKEN, Proc, http

from conftest import FULLNAME, NAMESPACE, Operator, service_account_kubeconfig

SECRET = "e2e-github-secret"
NAME = "github-e2e"
TRANSFORM = (
    '{"name": "github/" + headers["x-github-event"], "id": headers["x-github-delivery"],'
    ' "data": body}'
)


def webhook(transform: str = TRANSFORM, name: str = NAME) -> str:
    return json.dumps({
        "apiVersion": "ferryman.dev/v1alpha1", "kind": "Webhook",
        "metadata": {"name": name},
        "spec": {"transform": transform,
                 "verification": {"type": "github", "secretEnv": "E2E_GITHUB_SECRET"},
                 "contentTypes": ["application/json"]},
    })  # fmt: skip


@pytest.fixture(scope="module")
def gateway(cluster: Kube, operator: Operator, nats_url: str, state_dir: Path) -> Iterator[str]:
    from ferryman_worker.dev.embedded import PostgresServer

    try:
        pg = PostgresServer(state_dir / "postgres-webhooks")
    except RuntimeError as error:  # no PostgreSQL binaries on this machine
        pytest.skip(str(error))
    pg.start()
    env = {
        **os.environ, "FERRYMAN_NATS_URL": nats_url, "FERRYMAN_DATABASE_URL": pg.url,
        "E2E_GITHUB_SECRET": SECRET, "FERRYMAN_API_TOKEN": API_TOKEN,
        "KUBECONFIG": str(service_account_kubeconfig(
            cluster, f"{FULLNAME}-gateway", state_dir / "gateway-webhooks.kubeconfig")),
    }  # fmt: skip
    env.pop("KUBERNETES_SERVICE_HOST", None)
    migrate = Proc("migrate", ["migrate"], env, state_dir / "migrate-webhooks.log")
    assert migrate.proc.wait(60) == 0, migrate.log.read_text()
    port = free_port()
    proc = Proc(
        "gateway",
        ["gateway", "--host", "127.0.0.1", "--port", str(port)],
        env,
        state_dir / "gateway-webhooks.log",
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        proc.alive()
        try:
            http("GET", f"{url}/ready")
            return True
        except OSError:
            return False

    try:
        wait_for("the gateway /ready", ready, timeout=60)
        yield url
    finally:
        proc.stop()
        pg.stop()


def deliver(url: str, delivery: str, secret: str = SECRET) -> tuple[int, Any]:
    body = json.dumps({"action": "opened", "number": 7}).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"{url}/webhooks/{NAME}", data=body, method="POST",
        headers={"Content-Type": "application/json", "X-GitHub-Event": "pull_request",
                 "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": f"sha256={signature}"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def ready_webhook(cluster: Kube) -> dict[str, Any] | None:
    obj = cluster.get("-n", NAMESPACE, "webhook", NAME)
    generation = obj["metadata"]["generation"]
    ready = condition(obj, "Ready")
    return obj if ready.get("observedGeneration") == generation else None


def test_webhooks_declared_in_code_are_resources_the_api_server_accepts(
    cluster: Kube, release: str
) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ferryman_worker.cli", "manifests", "-m", "examples.await_payment"],
        check=True, cwd=REPO, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    assert "kind: Webhook" in out
    dry = cluster.kubectl(
        "-n", NAMESPACE, "apply", "--dry-run=server", "-f", "-", input=out, check=False
    )
    assert dry.returncode == 0, dry.stderr
    assert "webhook.ferryman.dev/stripe-payments created (server dry run)" in dry.stdout


def test_a_webhook_resource_serves_signed_deliveries_as_events(cluster: Kube, gateway: str) -> None:
    cluster.kubectl("-n", NAMESPACE, "apply", "-f", "-", input=webhook())
    obj = wait_for("the Webhook to be reconciled", lambda: ready_webhook(cluster), timeout=60)
    assert condition(obj, "Ready")["status"] == "True", obj["status"]
    assert obj["status"]["path"] == f"/webhooks/{NAME}"
    printed = cluster.kubectl("-n", NAMESPACE, "get", "fwh", NAME).stdout
    assert "True" in printed
    assert "github" in printed

    status, answer = wait_for(
        "the gateway to serve the webhook",
        lambda: (r := deliver(gateway, "d-1"))[0] == 200 and r,
        timeout=30,
    )
    assert answer["ids"] == ["d-1"]
    assert http("GET", f"{gateway}/v1/events?name=github/pull_request")["data"][0]["id"] == "d-1"
    status, answer = deliver(gateway, "d-2", secret="wrong")
    assert status == 401
    # The operator copies what the gateway saw into the status.
    obj = wait_for(
        "the last delivery and error in the status",
        lambda: (
            (o := cluster.get("-n", NAMESPACE, "webhook", NAME))["status"].get("lastDeliveryId")
            and "rejected" in o["status"].get("lastError", "")
            and o
        ),
        timeout=30,
    )
    assert obj["status"]["lastResult"] == "ACCEPTED"


def test_a_transform_that_does_not_compile_is_reported_and_the_last_good_one_kept(
    cluster: Kube, gateway: str
) -> None:
    cluster.kubectl("-n", NAMESPACE, "apply", "-f", "-", input=webhook('{"name": body.'))
    obj = wait_for("the Webhook to be reconciled", lambda: ready_webhook(cluster), timeout=60)
    ready = condition(obj, "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "InvalidSpec"
    assert "not a valid CEL expression" in ready["message"]
    events = cluster.get(
        "-n", NAMESPACE, "events", "--field-selector", f"involvedObject.name={NAME}"
    )
    assert any(e["reason"] == "InvalidSpec" for e in events["items"])
    assert deliver(gateway, "d-3")[0] == 200  # still the previous transform

    cluster.kubectl("-n", NAMESPACE, "apply", "-f", "-", input=webhook())
    obj = wait_for("the fixed Webhook", lambda: ready_webhook(cluster), timeout=60)
    assert condition(obj, "Ready")["status"] == "True"


def test_a_name_taken_in_another_namespace_is_not_served_twice(cluster: Kube, gateway: str) -> None:
    other = "e2e-webhooks-other"
    if not cluster.exists("namespace", other):
        cluster.kubectl("create", "namespace", other)
    cluster.kubectl("-n", other, "apply", "-f", "-", input=webhook('{"name": "other/x"}'))

    def reported() -> dict[str, Any] | None:
        obj = cluster.get("-n", other, "webhook", NAME)
        return obj if condition(obj, "Ready").get("reason") == "NameTaken" else None

    obj = wait_for("NameTaken", reported, timeout=60)
    assert f"k8s:{NAMESPACE}/{NAME}" in condition(obj, "Ready")["message"]
    assert deliver(gateway, "d-5")[1]["ids"] == ["d-5"]  # still the first one's transform
    cluster.kubectl("-n", other, "delete", "webhook", NAME, "--timeout=60s")
    assert deliver(gateway, "d-6")[0] == 200  # deleting the loser leaves the owner's
    cluster.kubectl("delete", "namespace", other, "--wait=false")


def test_deleting_the_webhook_stops_the_endpoint(cluster: Kube, gateway: str) -> None:
    cluster.kubectl("-n", NAMESPACE, "delete", "webhook", NAME, "--timeout=60s")
    wait_for("the endpoint to go", lambda: deliver(gateway, "d-4")[0] == 404, timeout=30)
