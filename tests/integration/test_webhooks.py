"""Webhooks through the real gateway, JetStream and PostgreSQL, with signatures computed here.

Specs are put where the operator and ``ferryman dev`` put them (the JetStream bucket), and
deliveries are posted the way Stripe, GitHub or a plain HMAC sender would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import ferryman
from ferryman.webhooks import github, hmac_sha256, none, stripe, token
from ferryman_jetstream import webhooks as registry
from ferryman_worker.gateway import Gateway, create_app
from ferryman_worker.webhooks import deliveries as store
from tests.harness import Stack

pytestmark = pytest.mark.integration

STRIPE_SECRET = "whsec_test_5b1c"
TOKEN = "operate-token-for-tests"
GITHUB_SECRET = "gh-secret"
STRIPE_TRANSFORM = '{"name": "stripe/" + body.type, "id": body.id, "data": body.data.object}'

shop = ferryman.Ferryman(app_id="shop")


@shop.function(id="fulfil", trigger=ferryman.on_event("stripe/payment_intent.succeeded"))
async def fulfil(ctx: ferryman.Context) -> dict[str, Any]:
    return {"paid": ctx.event.data["amount"]}


class Api:
    """``client`` is a third party (no credentials); ``rest`` calls the REST API with a token."""

    def __init__(
        self, client: httpx.AsyncClient, rest: httpx.AsyncClient, gateway: Gateway, stack: Stack
    ) -> None:
        self.client = client
        self.rest = rest
        self.gateway = gateway
        self.stack = stack

    async def declare(self, name: str, spec: dict[str, Any], owner: str = "test") -> None:
        assert await registry.put_webhook(self.gateway.js, name, spec, owner)

    def count(self, table: str) -> int:
        return int(self.stack.query(f"SELECT count(*) FROM {table}")[0][0])


@pytest.fixture
async def api(stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Api]:
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", STRIPE_SECRET)
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", GITHUB_SECRET)
    secrets = tmp_path / "secrets"
    (secrets / "carrier").mkdir(parents=True)
    (secrets / "carrier" / "signing-key").write_text("carrier-key\n")
    monkeypatch.setenv("FERRYMAN_WEBHOOK_SECRETS_DIR", str(secrets))
    # Auth on, as in a cluster: the webhook path needs no token, the REST API does.
    gateway = Gateway(stack.settings(event_key="sekret", auth=True, api_token=TOKEN))
    await gateway.open()
    transport = httpx.ASGITransport(app=create_app(gateway))
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://gw") as client,
        httpx.AsyncClient(transport=transport, base_url="http://gw", headers=bearer) as rest,
    ):
        hooks = Api(client, rest, gateway, stack)
        await hooks.declare(
            "stripe",
            {"transform": STRIPE_TRANSFORM, "verification": stripe(
                secret_env="STRIPE_WEBHOOK_SECRET").to_spec()},
        )  # fmt: skip
        yield hooks
    await gateway.close()


def stripe_headers(
    payload: bytes, secret: str = STRIPE_SECRET, at: int | None = None
) -> dict[str, str]:
    stamp = int(time.time()) if at is None else at
    signature = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256)
    return {
        "Stripe-Signature": f"t={stamp},v1={signature.hexdigest()}",
        "Content-Type": "application/json",
    }


def payment(event_id: str = "evt_1", amount: int = 4200) -> bytes:
    return json.dumps({
        "id": event_id, "type": "payment_intent.succeeded",
        "data": {"object": {"id": "pi_1", "amount": amount, "metadata": {"orderId": "o-1"}}},
    }).encode()  # fmt: skip


async def metric(api: Api, line: str) -> float:
    for row in (await api.rest.get("/metrics")).text.splitlines():
        if row.startswith(line + " "):
            return float(row.split()[-1])
    return 0.0


async def test_a_signed_stripe_delivery_becomes_an_event_that_starts_a_run(
    stack: Stack, api: Api
) -> None:
    await stack.start_worker(shop)
    body = payment()
    response = await api.client.post("/webhooks/stripe", content=body, headers=stripe_headers(body))
    assert response.status_code == 200, response.text
    assert response.json()["ids"] == ["evt_1"]
    run = await stack.wait_run("evt_1")
    assert run[3] == {"paid": 4200}
    name, data = stack_event(api, "evt_1")
    assert name == "stripe/payment_intent.succeeded"
    assert data["metadata"] == {"orderId": "o-1"}

    delivery_id = response.json()["delivery_id"]
    delivery = (await api.rest.get(f"/v1/webhooks/stripe/deliveries/{delivery_id}")).json()
    delivery = delivery["data"]
    assert delivery["status"] == "ACCEPTED"
    assert delivery["verification"] == "stripe"
    assert delivery["event_ids"] == ["evt_1"]
    assert json.loads(delivery["body"]) == json.loads(body)
    assert delivery["headers"]["stripe-signature"] == "[redacted]"
    assert await metric(api, 'ferryman_webhook_received_total{webhook="stripe"}') >= 1


async def test_a_duplicate_delivery_is_one_event_and_one_run(stack: Stack, api: Api) -> None:
    await stack.start_worker(shop)
    body = payment("evt_dup")
    for _ in range(3):
        response = await api.client.post(
            "/webhooks/stripe", content=body, headers=stripe_headers(body)
        )
        assert response.json()["ids"] == ["evt_dup"]
    await stack.wait_run("evt_dup")
    assert stack.query("SELECT count(*) FROM events WHERE id LIKE 'evt%%'") == [(1,)]
    assert len(stack.runs_of("evt_dup")) == 1
    assert api.count("webhook_deliveries") == 3


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("wrong secret", "bad_signature"),
        ("tampered body", "bad_signature"),
        ("replayed timestamp", "stale_timestamp"),
        ("missing header", "missing_signature"),
        ("garbled header", "malformed_signature"),
    ],
)
async def test_a_stripe_delivery_that_fails_verification_is_401_and_stores_nothing(
    api: Api, case: str, reason: str
) -> None:
    body = payment()
    headers = stripe_headers(body)
    if case == "wrong secret":
        headers = stripe_headers(body, secret="whsec_wrong")
    elif case == "tampered body":
        body = payment(amount=1)
    elif case == "replayed timestamp":
        headers = stripe_headers(body, at=int(time.time()) - 600)
    elif case == "missing header":
        del headers["Stripe-Signature"]
    else:
        headers["Stripe-Signature"] = "v1=abc"
    label = f'ferryman_webhook_rejected_total{{reason="{reason}",webhook="stripe"}}'
    before = await metric(api, label)
    response = await api.client.post("/webhooks/stripe", content=body, headers=headers)
    assert response.status_code == 401
    assert "webhook 'stripe'" in response.json()["error"]
    assert api.count("events") == 0
    assert api.count("webhook_deliveries") == 0
    assert await metric(api, label) == before + 1
    status = await registry.get_status(api.gateway.js, "stripe")
    assert status["lastError"].startswith("rejected:")
    # The REST API (read role) lists the refusal, without anything of the payload.
    assert (await api.client.get("/v1/webhooks/stripe")).status_code == 401
    shown = (await api.rest.get("/v1/webhooks/stripe")).json()["data"]["status"]
    [refused] = shown["recentRejections"]
    assert refused["reason"] == reason
    assert refused["message"] in status["lastError"]
    assert set(refused) == {"time", "reason", "message", "client"}


async def test_github_signatures(api: Api) -> None:
    await api.declare("github", {
        "transform": '{"name": "github/" + headers["x-github-event"],'
                     ' "id": headers["x-github-delivery"], "data": body}',
        "verification": github(secret_env="GITHUB_WEBHOOK_SECRET").to_spec(),
    })  # fmt: skip
    body = json.dumps({"action": "opened", "number": 7}).encode()
    digest = hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json", "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": "d-1", "X-Hub-Signature-256": f"sha256={digest}",
    }  # fmt: skip
    ok = await api.client.post("/webhooks/github", content=body, headers=headers)
    assert ok.json()["ids"] == ["d-1"]
    assert stack_event(api, "d-1") == ("github/pull_request", {"action": "opened", "number": 7})
    bad = await api.client.post(
        "/webhooks/github", content=body, headers={**headers, "X-Hub-Signature-256": "sha256=00"}
    )
    assert bad.status_code == 401
    assert api.count("events") == 1


def stack_event(api: Api, event_id: str) -> tuple[Any, Any]:
    [row] = api.stack.query("SELECT name, data FROM events WHERE id = %s", event_id)
    return row[0], row[1]


async def test_generic_hmac_from_a_mounted_secret_and_form_bodies(api: Api) -> None:
    verification = hmac_sha256(
        header="X-Carrier-Signature", prefix="sha256=", encoding="base64",
        secret_ref=("carrier", "signing-key"),
    )  # fmt: skip
    await api.declare("carrier", {
        "transform": '{"name": "shipping/label-created", "id": body.label_id,'
                     ' "data": {"orderId": body.order, "tracking": body.tracking}}',
        "verification": verification.to_spec(),
    })  # fmt: skip
    body = b"label_id=l-9&order=o-1&tracking=1Z999"
    signature = base64.b64encode(hmac.new(b"carrier-key", body, hashlib.sha256).digest())
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Carrier-Signature": "sha256=" + signature.decode(),
    }
    ok = await api.client.post("/webhooks/carrier", content=body, headers=headers)
    assert ok.status_code == 200, ok.text
    assert stack_event(api, "l-9") == (
        "shipping/label-created",
        {"orderId": "o-1", "tracking": "1Z999"},
    )
    delivery = (await api.rest.get("/v1/webhooks/carrier/deliveries")).json()["data"][0]
    assert delivery["headers"]["x-carrier-signature"] == "[redacted]"
    wrong = base64.b64encode(hmac.new(b"other", body, hashlib.sha256).digest()).decode()
    refused = await api.client.post(
        "/webhooks/carrier", content=body, headers={**headers, "X-Carrier-Signature": wrong}
    )
    assert refused.status_code == 401


async def test_shared_tokens_in_a_header_or_the_query(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "t0k3n")
    transform = '{"name": "ops/ping", "data": body}'
    await api.declare("by-header", {"transform": transform, "verification": token(
        header="X-Token", secret_env="HOOK_TOKEN").to_spec()})  # fmt: skip
    await api.declare("by-query", {"transform": transform, "verification": token(
        query_param="token", secret_env="HOOK_TOKEN").to_spec()})  # fmt: skip
    good = await api.client.post("/webhooks/by-header", json={"n": 1}, headers={"X-Token": "t0k3n"})
    assert good.status_code == 200
    assert (await api.client.post("/webhooks/by-header", json={"n": 1})).status_code == 401
    bad = await api.client.post("/webhooks/by-header", json={"n": 1}, headers={"X-Token": "nope"})
    assert bad.status_code == 401
    assert (
        await api.client.post("/webhooks/by-query?token=t0k3n", json={"n": 2})
    ).status_code == 200
    assert (await api.client.post("/webhooks/by-query?token=x", json={"n": 2})).status_code == 401
    kept = (await api.rest.get("/v1/webhooks/by-query/deliveries")).json()["data"]
    assert kept[0]["query"] == {"token": "[redacted]"}


async def test_a_transform_error_is_400_naming_the_problem_and_a_fixed_transform_reruns_it(
    stack: Stack, api: Api
) -> None:
    await stack.start_worker(shop)
    body = json.dumps({"id": "evt_9", "type": "payment_intent.succeeded",
                       "payload": {"amount": 900}}).encode()  # fmt: skip
    response = await api.client.post("/webhooks/stripe", content=body, headers=stripe_headers(body))
    assert response.status_code == 400
    error = response.json()["error"]
    assert "body.data.object" in error
    assert "no such key" in error
    assert api.count("events") == 0
    delivery_id = response.json()["delivery_id"]
    kept = (await api.rest.get(f"/v1/webhooks/stripe/deliveries/{delivery_id}")).json()["data"]
    assert kept["status"] == "TRANSFORM_FAILED"
    assert kept["error"] == error
    status = await registry.get_status(api.gateway.js, "stripe")
    assert status["lastResult"] == "TRANSFORM_FAILED"

    await api.declare("stripe", {
        "transform": '{"name": "stripe/" + body.type, "id": body.id, "data": body.payload}',
        "verification": stripe(secret_env="STRIPE_WEBHOOK_SECRET").to_spec(),
    })  # fmt: skip
    rerun = await api.rest.post(f"/v1/webhooks/stripe/deliveries/{delivery_id}/rerun")
    assert rerun.status_code == 200, rerun.text
    assert rerun.json()["data"]["status"] == "ACCEPTED"
    assert rerun.json()["data"]["reruns"] == 1
    run = await stack.wait_run("evt_9")
    assert run[3] == {"paid": 900}


@pytest.mark.parametrize(
    ("transform", "message"),
    [
        ('{"data": body}', "event 'name' is required"),
        ('{"name": "has space"}', "whitespace"),
        ('"just a string"', "an event object or a list"),
        ('{"name": "x", "id": 7}', "'id' must be a string"),
        ('{"name": "x", "data": [1]}', "'data' must be an object"),
        ("body.id + 1", "Unsupported operation"),
    ],
)
async def test_transforms_that_make_no_valid_events_are_400(
    api: Api, transform: str, message: str
) -> None:
    await api.declare("any", {"transform": transform, "verification": none().to_spec()})
    response = await api.client.post("/webhooks/any", json={"id": "x"})
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert api.count("events") == 0


async def test_one_delivery_can_make_several_events_or_none(api: Api) -> None:
    await api.declare("batch", {
        "transform": 'body.items.map(i, {"name": "inventory/changed", "id": i.sku, "data": i})',
        "verification": none().to_spec(),
    })  # fmt: skip
    body = {"items": [{"sku": "a", "n": 1}, {"sku": "b", "n": 2}]}
    assert (await api.client.post("/webhooks/batch", json=body)).json()["ids"] == ["a", "b"]
    assert (await api.client.post("/webhooks/batch", json={"items": []})).json()["ids"] == []


async def test_without_an_id_a_redelivered_body_is_still_one_event(api: Api) -> None:
    await api.declare("plain", {"transform": '{"name": "x/y", "data": body}',
                                "verification": none().to_spec()})  # fmt: skip
    first = (await api.client.post("/webhooks/plain", json={"a": 1})).json()["ids"]
    again = (await api.client.post("/webhooks/plain", json={"a": 1})).json()["ids"]
    other = (await api.client.post("/webhooks/plain", json={"a": 2})).json()["ids"]
    assert first == again
    assert first != other
    assert api.count("events") == 2


async def chunks(total: int) -> AsyncIterator[bytes]:
    for _ in range(total // 65536):
        yield b" " * 65536


async def test_bad_requests_are_4xx_and_never_5xx(api: Api) -> None:
    await api.declare("small", {"transform": '{"name": "x/y", "data": body}',
                                "verification": none().to_spec(), "maxBodyBytes": 2048,
                                "contentTypes": ["application/json"]})  # fmt: skip
    post = api.client.post
    assert (await post("/webhooks/nope", json={})).status_code == 404
    assert (await post("/webhooks/Not_A_Name", json={})).status_code == 404
    big = await post("/webhooks/small", content=b"[" + b"1," * 2000 + b"1]",
                     headers={"Content-Type": "application/json"})  # fmt: skip
    assert big.status_code == 413
    # No Content-Length (chunked): refused once 2 KiB are read, not after 30 MB.
    streamed = await post(
        "/webhooks/small", content=chunks(30 * 1024 * 1024),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert streamed.status_code == 413
    malformed = await post("/webhooks/small", content=b'{"a": ',
                           headers={"Content-Type": "application/json"})  # fmt: skip
    assert malformed.status_code == 400
    assert "not valid JSON" in malformed.json()["error"]
    form = await post("/webhooks/small", content=b"a=1",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert form.status_code == 415
    for junk in (b"\xff\xfe", b'{"a": "\\u0000"}', b'{"n": 99999999999999999999999}'):
        refused = await post("/webhooks/small", content=junk,
                             headers={"Content-Type": "application/json"})  # fmt: skip
        assert refused.status_code == 400, junk
    assert api.count("events") == 0
    assert api.count("webhook_deliveries") == 0


async def test_a_missing_secret_is_503_so_the_sender_retries(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET")
    body = payment()
    response = await api.client.post("/webhooks/stripe", content=body, headers=stripe_headers(body))
    assert response.status_code == 503
    assert "not configured" in (await registry.get_status(api.gateway.js, "stripe"))["lastError"]


async def test_the_webhooks_api_lists_webhooks_and_pages_deliveries(api: Api) -> None:
    await api.declare("pages", {"transform": '{"name": "x/y", "data": body}',
                                "verification": none().to_spec()})  # fmt: skip
    for n in range(5):
        await api.client.post("/webhooks/pages", json={"n": n})
    listed = (await api.rest.get("/v1/webhooks")).json()["data"]
    assert {w["name"] for w in listed} == {"stripe", "pages"}
    one = (await api.rest.get("/v1/webhooks/pages")).json()["data"]
    assert one["path"] == "/webhooks/pages"
    assert one["status"]["lastResult"] == "ACCEPTED"
    first = (await api.rest.get("/v1/webhooks/pages/deliveries?limit=3")).json()
    second = (await api.rest.get(
        f"/v1/webhooks/pages/deliveries?limit=3&cursor={first['cursor']}")).json()  # fmt: skip
    bodies = [json.loads(d["body"])["n"] for d in first["data"] + second["data"]]
    assert bodies == [4, 3, 2, 1, 0]
    assert second["cursor"] is None
    assert (await api.rest.get("/v1/webhooks/nope")).status_code == 404
    assert (await api.rest.get("/v1/webhooks/pages/deliveries?limit=0")).status_code == 400
    assert (await api.rest.get("/v1/webhooks/pages/deliveries/nope")).status_code == 404


async def test_deliveries_older_than_the_retention_are_pruned(api: Api) -> None:
    await api.declare("kept", {"transform": '{"name": "x/y", "data": body}',
                               "verification": none().to_spec()})  # fmt: skip
    for n in range(2):
        await api.client.post("/webhooks/kept", json={"n": n})
    api.stack.query(
        "UPDATE webhook_deliveries SET received_at = now() - interval '8 days'"
        " WHERE body = %s RETURNING id",
        b'{"n":0}',
    )
    deliveries = store.Deliveries(api.gateway.pool, timedelta(days=7))
    assert await deliveries.prune() == 1
    kept = (await api.rest.get("/v1/webhooks/kept/deliveries")).json()["data"]
    assert [json.loads(d["body"]) for d in kept] == [{"n": 1}]


async def test_the_deliveries_api_needs_a_token_and_the_webhook_path_does_not(api: Api) -> None:
    assert (await api.client.get("/v1/webhooks")).status_code == 401
    assert (await api.client.get("/v1/webhooks/stripe/deliveries")).status_code == 401
    assert (await api.client.post("/v1/webhooks/stripe/deliveries/x/rerun")).status_code == 401
    body = payment("evt_public")
    response = await api.client.post("/webhooks/stripe", content=body, headers=stripe_headers(body))
    assert response.status_code == 200


async def test_a_webhook_removed_from_the_code_is_no_longer_served(stack: Stack, api: Api) -> None:
    def app(with_hook: bool) -> ferryman.Ferryman:
        fm = ferryman.Ferryman(app_id="hooks")
        if with_hook:
            fm.webhook(name="from-code", transform='{"name": "x/y"}', verify=none())

        @fm.function(id="noop", trigger=ferryman.on_event("x/y"))
        async def noop(ctx: ferryman.Context) -> None:
            return None

        return fm

    worker = await stack.start_worker(app(True))
    assert (await api.client.post("/webhooks/from-code", json={})).status_code == 200
    listed = (await api.rest.get("/v1/webhooks/from-code")).json()["data"]
    assert listed["owner"] == "code:hooks"
    await worker.stop()
    await stack.start_worker(app(False))
    assert (await api.client.post("/webhooks/from-code", json={})).status_code == 404
    assert (await api.client.post("/webhooks/stripe", json={})).status_code == 401  # not ours
