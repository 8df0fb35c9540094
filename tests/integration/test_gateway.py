"""The gateway's HTTP API against real PostgreSQL and NATS: events in, runs out, bad input out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from ferryman_worker.gateway import Gateway, create_app
from tests.apps import durable_app
from tests.harness import Stack

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    gateway = Gateway(stack.settings(event_key="sekret", api_token="tok"))
    await gateway.open()
    transport = httpx.ASGITransport(app=create_app(gateway))
    headers = {"Authorization": "Bearer tok"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gw", headers=headers
    ) as client:
        yield client
    await gateway.close()


def stored_events(stack: Stack) -> int:
    return int(stack.query("SELECT count(*) FROM events")[0][0])


async def test_an_event_posted_to_the_gateway_starts_a_run_visible_through_the_api(
    stack: Stack,
    api: httpx.AsyncClient,
) -> None:
    await stack.start_worker(durable_app.fm)
    response = await api.post("/e/sekret", json={"name": "test.sleep", "data": {"seconds": 0}})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == 200
    [event_id] = body["ids"]

    run = await stack.wait_run(event_id)
    runs = (await api.get(f"/v1/events/{event_id}/runs")).json()["data"]
    assert [r["run_id"] for r in runs] == [run[0]]

    detail = (await api.get(f"/v1/runs/{run[0]}")).json()["data"]
    assert detail["status"] == "COMPLETED"
    assert detail["output"] == "woke"
    assert detail["function_id"] == "durable-sleeper"
    assert [s["id"] for s in detail["steps"]] == ["before", "nap", "after"]
    assert {s["status"] for s in detail["steps"]} == {"COMPLETED"}
    assert detail["steps"][1]["op"] == "sleep"


async def test_a_batch_of_events_gets_one_id_each_and_a_reused_id_is_kept(
    api: httpx.AsyncClient,
) -> None:
    events = [{"name": "order.created", "data": {"n": i}} for i in range(3)]
    events.append({"name": "order.created", "data": {}, "id": "my-own-id"})
    body = (await api.post("/e/sekret", json=events)).json()
    assert len(body["ids"]) == 4
    assert len(set(body["ids"])) == 4
    assert body["ids"][3] == "my-own-id"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"data": {}}, "event 'name' is required"),
        ({"name": "has space", "data": {}}, "contains whitespace"),
        ({"name": "x" * 257, "data": {}}, "the limit is 256"),
        ({"name": "a..b", "data": {}}, "empty segment"),
        ({"name": "ok", "data": [1, 2]}, "'data' must be an object"),
        ({"name": "ok", "data": {}, "ts": "yesterday"}, "'ts' must be milliseconds"),
        ({"name": "ok", "data": {"blob": "x" * (512 * 1024)}}, "event size limit"),
        ([], "no events"),
        ([{"name": "ok"}] * 5001, "the limit is 5000"),
        ([{"name": "ok"}, 7], "event 1 must be an object"),
    ],
)
async def test_bad_events_are_refused_with_a_reason_and_nothing_is_stored(
    stack: Stack,
    api: httpx.AsyncClient,
    payload: object,
    message: str,
) -> None:
    response = await api.post("/e/sekret", json=payload)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert stored_events(stack) == 0


async def test_invalid_json_and_a_wrong_key_are_refused(
    stack: Stack,
    api: httpx.AsyncClient,
) -> None:
    response = await api.post("/e/sekret", content=b"{not json")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]
    response = await api.post("/e/wrong", json={"name": "ok", "data": {}})
    assert response.status_code == 401
    assert "FERRYMAN_EVENT_KEY" in response.json()["error"]
    assert stored_events(stack) == 0


async def test_runs_list_filters_and_pages_newest_first(
    stack: Stack,
    api: httpx.AsyncClient,
) -> None:
    await stack.start_worker(durable_app.fm)
    ids = [await stack.send("test.sleep", {"seconds": 0}) for _ in range(5)]
    for event_id in ids:
        await stack.wait_run(event_id)

    first = (
        await api.get(
            "/v1/runs", params={"limit": 2, "status": "COMPLETED", "function_id": "durable-sleeper"}
        )
    ).json()
    second = (
        await api.get(
            "/v1/runs",
            params={
                "limit": 2,
                "status": "COMPLETED",
                "function_id": "durable-sleeper",
                "cursor": first["cursor"],
            },
        )
    ).json()
    third = (
        await api.get(
            "/v1/runs",
            params={
                "limit": 2,
                "status": "COMPLETED",
                "function_id": "durable-sleeper",
                "cursor": second["cursor"],
            },
        )
    ).json()
    seen = [r["run_id"] for page in (first, second, third) for r in page["data"]]
    assert len(seen) == 5
    assert len(set(seen)) == 5
    assert third["cursor"] is None
    created = [r["created_at"] for page in (first, second, third) for r in page["data"]]
    assert created == sorted(created, reverse=True)

    none = (await api.get("/v1/runs", params={"status": "FAILED"})).json()
    assert none["data"] == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": "DONE"}, "status must be one of"),
        ({"limit": "0"}, "limit must be"),
        ({"after": "last week"}, "ISO 8601"),
        ({"cursor": "garbage"}, "cursor"),
    ],
)
async def test_bad_run_queries_say_what_is_wrong(
    api: httpx.AsyncClient,
    params: dict[str, str],
    message: str,
) -> None:
    response = await api.get("/v1/runs", params=params)
    assert response.status_code == 400
    assert message in response.json()["error"]


async def test_unknown_runs_and_events_are_404(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/runs/nope")).status_code == 404
    assert (await api.get("/v1/events/nope/runs")).status_code == 404


async def test_health_ready_and_metrics(stack: Stack, api: httpx.AsyncClient) -> None:
    assert (await api.get("/health")).json() == {"status": "ok"}
    assert (await api.get("/ready")).json() == {"ready": True}
    await api.post("/e/sekret", json={"name": "counted", "data": {}})
    metrics = (await api.get("/metrics")).text
    assert "ferryman_events_received_total" in metrics

    stack.nats.kill()
    try:
        response = await api.get("/ready")
        assert response.status_code == 503
        assert "nats" in " ".join(response.json()["problems"])
    finally:
        stack.nats.start()
