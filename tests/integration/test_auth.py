"""Authentication and authorization at the gateway, against real PostgreSQL and NATS.

Event keys and API tokens created with the CLI, roles, revocation, the trusted proxy
header, what stays public, and ``ferryman dev``'s open default.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from starlette.responses import JSONResponse
from starlette.routing import Route

from ferryman_worker.gateway import Gateway, create_app
from ferryman_worker.gateway.auth import REFRESH_SECONDS, public
from ferryman_worker.storage import credentials
from tests.harness import Stack

pytestmark = pytest.mark.integration

Client = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def gateway_for(stack: Stack) -> AsyncIterator[Callable[..., Any]]:
    """Open gateways with given settings; return a client factory for each."""
    opened: list[Gateway] = []

    async def make(**settings: Any) -> Client:
        gateway = Gateway(stack.settings(**settings))
        await gateway.open()
        opened.append(gateway)
        app = create_app(gateway)

        def client(token: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            transport = httpx.ASGITransport(app=app, client=kwargs.pop("peer", ("1.2.3.4", 5)))
            return httpx.AsyncClient(
                transport=transport, base_url="http://gw", headers=headers, **kwargs
            )

        return client

    yield make
    for gateway in opened:
        await gateway.close()


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FERRYMAN_DATABASE_URL": stack.db_url}
    return subprocess.run(
        [sys.executable, "-m", "ferryman_worker.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def events(stack: Stack) -> int:
    return int(stack.query("SELECT count(*) FROM events")[0][0])


async def test_without_a_token_the_api_answers_401_json_and_reveals_nothing(
    stack: Stack, gateway_for: Callable[..., Any]
) -> None:
    client = await gateway_for(event_key="k1")
    async with client() as api:
        assert (await api.post("/e/k1", json={"name": "secret.thing", "data": {"a": 1}})).is_success
        for method, path in [
            ("GET", "/v1/events"),
            ("GET", "/v1/runs"),
            ("GET", "/v1/runs/r1"),
            ("GET", "/v1/events/e1/runs"),
            ("POST", "/v1/runs/r1/cancel"),
            ("POST", "/v1/runs/r1/replay"),
            ("POST", "/v1/runs/cancel"),
            ("POST", "/v1/runs/replay"),
            ("GET", "/v1/some-future-route"),  # unknown paths are denied, not open
            ("DELETE", "/anything"),
        ]:
            response = await api.request(method, path, json={"function_id": "f"})
            assert response.status_code == 401, (method, path)
            assert response.headers["content-type"] == "application/json"
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert "Bearer" in response.json()["error"]
            assert "secret.thing" not in response.text
        # A wrong token is refused the same way.
        async with client("not-a-token") as bad:
            response = await bad.get("/v1/events")
            assert response.status_code == 401
            assert "unknown or revoked" in response.json()["error"]
        for path in ("/health", "/ready", "/metrics"):
            assert (await api.get(path)).status_code == 200, path
        # Webhooks carry their own signatures: reachable without a token (404: none declared).
        assert (await api.post("/webhooks/nope", content=b"{}")).status_code == 404


async def test_tokens_created_with_the_cli_have_roles_and_revocation_bites(
    stack: Stack, gateway_for: Callable[..., Any]
) -> None:
    made = cli(stack, "tokens", "create", "dashboards", "--role", "read")
    assert made.returncode == 0, made.stderr
    reader = made.stdout.splitlines()[0]
    operator = cli(stack, "tokens", "create", "oncall", "--role", "operate").stdout.split()[0]
    assert reader.startswith("fmt_")
    assert reader != operator
    # Only digests are stored.
    stored = stack.query("SELECT digest FROM api_tokens ORDER BY id")
    assert [bytes(r[0]) for r in stored] == [
        credentials.digest(reader),
        credentials.digest(operator),
    ]
    assert reader not in str(stack.query("SELECT * FROM api_tokens"))

    listed = cli(stack, "tokens", "list").stdout
    assert "dashboards" in listed
    assert "read" in listed
    assert "oncall" in listed
    assert reader not in listed

    client = await gateway_for()
    async with client(reader) as read, client(operator) as op:
        assert (await read.get("/v1/runs")).status_code == 200
        assert (await read.get("/v1/events")).status_code == 200
        refused = await read.post("/v1/runs/cancel", json={"function_id": "f"})
        assert refused.status_code == 403
        assert "operate" in refused.json()["error"]
        assert (await read.post("/v1/runs/r1/cancel")).status_code == 403
        assert (await op.post("/v1/runs/cancel", json={"function_id": "f"})).status_code == 200
        assert (await op.post("/v1/runs/nope/cancel")).status_code == 404

        assert cli(stack, "tokens", "revoke", "dashboards").returncode == 0
        await asyncio.sleep(REFRESH_SECONDS + 0.5)
        assert (await read.get("/v1/runs")).status_code == 401
        assert (await op.get("/v1/runs")).status_code == 200

    again = cli(stack, "tokens", "revoke", "dashboards")
    assert again.returncode != 0
    assert "no live token" in again.stderr
    assert "dashboards" in cli(stack, "tokens", "list", "--revoked").stdout
    duplicate = cli(stack, "tokens", "create", "oncall", "--role", "read")
    assert duplicate.returncode != 0
    assert "exists" in duplicate.stderr
    bad_role = cli(stack, "tokens", "create", "x", "--role", "admin")
    assert bad_role.returncode != 0


async def test_several_named_event_keys_each_revocable(
    stack: Stack, gateway_for: Callable[..., Any]
) -> None:
    billing = cli(stack, "keys", "create", "billing").stdout.split()[0]
    shop = cli(stack, "keys", "create", "shop").stdout.split()[0]
    assert billing.startswith("fmk_")
    client = await gateway_for()  # no FERRYMAN_EVENT_KEY: only stored keys
    async with client() as api:
        event = {"name": "order.created", "data": {}}
        assert (await api.post(f"/e/{billing}", json=event)).status_code == 200
        assert (await api.post(f"/e/{shop}", json=event)).status_code == 200
        wrong = await api.post("/e/guess", json=event)
        assert wrong.status_code == 401
        assert "ferryman keys create" in wrong.json()["error"]
        # An API token is not an event key.
        token = cli(stack, "tokens", "create", "t", "--role", "operate").stdout.split()[0]
        assert (await api.post(f"/e/{token}", json=event)).status_code == 401
        assert events(stack) == 2

        assert cli(stack, "keys", "revoke", "shop").returncode == 0
        await asyncio.sleep(REFRESH_SECONDS + 0.5)
        assert (await api.post(f"/e/{shop}", json=event)).status_code == 401
        assert (await api.post(f"/e/{billing}", json=event)).status_code == 200
    assert events(stack) == 3


async def test_the_env_token_and_key_work_without_any_stored_credential(
    stack: Stack, gateway_for: Callable[..., Any]
) -> None:
    client = await gateway_for(api_token="boot-token", event_key="boot-key")
    async with client("boot-token") as api:
        assert (await api.post("/e/boot-key", json={"name": "a", "data": {}})).status_code == 200
        assert (await api.post("/v1/runs/cancel", json={"function_id": "f"})).status_code == 200
    async with client("boot-key") as wrong:
        assert (await wrong.get("/v1/runs")).status_code == 401


async def test_the_trusted_proxy_header_counts_only_from_the_proxy(
    stack: Stack, gateway_for: Callable[..., Any]
) -> None:
    client = await gateway_for(
        trusted_proxy_header="X-Forwarded-Email",
        trusted_proxies="10.0.0.0/8",
        proxy_operators="ops@example.com",
    )
    alice = {"X-Forwarded-Email": "alice@example.com"}
    ops = {"X-Forwarded-Email": "ops@example.com"}
    async with client(peer=("10.1.2.3", 4000)) as via_proxy:
        assert (await via_proxy.get("/v1/runs", headers=alice)).status_code == 200
        forbidden = await via_proxy.post(
            "/v1/runs/cancel", json={"function_id": "f"}, headers=alice
        )
        assert forbidden.status_code == 403
        assert "alice@example.com" in forbidden.json()["error"]
        allowed = await via_proxy.post("/v1/runs/cancel", json={"function_id": "f"}, headers=ops)
        assert allowed.status_code == 200
        assert (await via_proxy.get("/v1/runs")).status_code == 401  # no header: nobody
    async with client(peer=("192.168.1.5", 4000)) as direct:
        assert (await direct.get("/v1/runs", headers=ops)).status_code == 401

    anywhere = await gateway_for(
        trusted_proxy_header="X-Auth-User", trust_proxy_header_from_any=True
    )
    async with anywhere(peer=("192.168.1.5", 4000)) as sidecar:
        assert (await sidecar.get("/v1/runs", headers={"X-Auth-User": "bob"})).status_code == 200


async def test_metrics_can_require_a_read_token(
    stack: Stack, gateway_for: Callable[..., Any]
) -> None:
    client = await gateway_for(metrics_public=False, api_token="t")
    async with client() as anonymous, client("t") as reader:
        assert (await anonymous.get("/metrics")).status_code == 401
        assert (await reader.get("/metrics")).status_code == 200
        assert (await anonymous.get("/health")).status_code == 200


async def test_routes_marked_public_need_nothing_and_others_are_protected(
    stack: Stack,
) -> None:
    async def page(request: Any) -> JSONResponse:
        return JSONResponse({"page": True})

    gateway = Gateway(stack.settings())
    await gateway.open()
    try:
        app = create_app(gateway)
        # What a console or webhook route does: mark itself public where it is declared.
        app.router.routes.append(public(Route("/custom-hook/{name}", page, methods=["POST"])))
        app.router.routes.append(Route("/v1/new-thing", page))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as api:
            assert (await api.post("/custom-hook/x")).json() == {"page": True}
            assert (await api.get("/v1/new-thing")).status_code == 401
    finally:
        await gateway.close()


async def test_auth_off_is_open_but_keeps_a_configured_event_key(
    stack: Stack, gateway_for: Callable[..., Any]
) -> None:
    client = await gateway_for(auth=False, event_key="dev-key")
    async with client() as api:
        assert (await api.get("/v1/runs")).status_code == 200
        assert (await api.post("/e/other", json={"name": "a"})).status_code == 401
        assert (await api.post("/e/dev-key", json={"name": "a"})).status_code == 200
    open_client = await gateway_for(auth=False)
    async with open_client() as api:
        assert (await api.post("/e/anything", json={"name": "a"})).status_code == 200


def test_the_cli_sends_ferryman_api_token(stack: Stack) -> None:
    """`ferryman runs list` against a gateway process that requires a token."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**stack.env(), "FERRYMAN_API_TOKEN": "cli-token", "FERRYMAN_EVENT_KEY": "k"}
    gateway = subprocess.Popen(
        [sys.executable, "-m", "ferryman_worker.cli", "gateway", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):  # a loaded CI machine starts Python slowly
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            subprocess.run(["sleep", "0.1"], check=True)
        base = [sys.executable, "-m", "ferryman_worker.cli"]
        ok = subprocess.run(
            [*base, "runs", "list", "--url", url],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert ok.returncode == 0, ok.stderr
        assert "RUN ID" in ok.stdout
        no_token = {k: v for k, v in env.items() if k != "FERRYMAN_API_TOKEN"}
        refused = subprocess.run(
            [*base, "runs", "list", "--url", url],
            env=no_token,
            capture_output=True,
            text=True,
            check=False,
        )
        assert refused.returncode != 0
        assert "FERRYMAN_API_TOKEN" in refused.stderr
        assert "Traceback" not in refused.stderr
        sent = subprocess.run(
            [*base, "send", "a.b", "--url", url],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert sent.returncode == 0, sent.stderr
    finally:
        gateway.terminate()
        gateway.wait(10)
