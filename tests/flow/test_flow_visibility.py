"""A held run says why, through the REST API and the CLI; skipped events say which rule."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from ferryman_worker import cli
from ferryman_worker.gateway import Gateway, create_app
from tests.apps import flow_app
from tests.harness import Stack, wait_for

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


async def test_held_runs_give_a_reason_and_skipped_events_their_rule(
    stack: Stack, api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    await stack.start_worker(flow_app.fm)
    ids = []
    for _ in range(3):
        answer = await api.post("/e/sekret", json={"name": "flow.one", "data": {"seconds": 1.0}})
        ids += answer.json()["ids"]
    held: dict[str, Any] = {}

    async def a_held_run() -> bool:
        for event_id in ids:
            for run in (await api.get(f"/v1/events/{event_id}/runs")).json()["data"]:
                detail = (await api.get(f"/v1/runs/{run['run_id']}")).json()["data"]
                reason = detail["reason"] or ""
                if detail["status"] == "QUEUED" and reason.startswith("concurrency key"):
                    held.update(detail)
                    return True
        return False

    await wait_for(a_held_run, 10, "no run was shown QUEUED with a reason")
    assert held["reason"].startswith("concurrency key (none)"), held["reason"]

    # the CLI prints the same reason
    body = {"data": held}
    monkeypatch.setattr(cli, "_http", lambda method, url, **kw: body)
    cli.cmd_runs_show(argparse.Namespace(url="http://gw", run_id=held["run_id"], json=False))
    assert f"reason    {held['reason']}" in capsys.readouterr().out
    ran = {**held, "status": "COMPLETED", "reason": None, "held_reason": held["reason"]}
    body = {"data": ran}
    cli.cmd_runs_show(argparse.Namespace(url="http://gw", run_id=held["run_id"], json=False))
    assert f"waited    {held['reason']}" in capsys.readouterr().out

    rated = []
    for _ in range(2):
        answer = await api.post("/e/sekret", json={"name": "flow.rated", "data": {"user": "u"}})
        rated += answer.json()["ids"]

    async def recorded() -> bool:
        body = (await api.get(f"/v1/events/{rated[1]}/runs")).json()
        return bool(body["skipped"])

    await wait_for(recorded, 10, "the rate-limited event was not listed as skipped")
    body = (await api.get(f"/v1/events/{rated[1]}/runs")).json()
    assert body["data"] == []
    assert [(s["function_id"], s["skipped"]) for s in body["skipped"]] == [
        ("flow-rate-limited", "rate_limit")
    ]
    # the events list says it too, beside the runs each event started
    listed = {e["id"]: e for e in (await api.get("/v1/events?name=flow.rated")).json()["data"]}
    assert listed[rated[1]]["skipped"] == [
        {"function_id": "flow-rate-limited", "skipped": "rate_limit"}
    ]
    assert listed[rated[1]]["runs"] == []
    assert listed[rated[0]]["skipped"] == []
    assert [r["function_id"] for r in listed[rated[0]]["runs"]] == ["flow-rate-limited"]
    finished = (await api.get(f"/v1/runs/{held['run_id']}")).json()["data"]
    assert finished["reason"] is None or finished["status"] == "QUEUED"

    # Once it ran, ``reason`` (why it is held now) is gone, ``held_reason`` (why it waited) stays.
    async def completed() -> bool:
        run = (await api.get(f"/v1/runs/{held['run_id']}")).json()["data"]
        finished.update(run)
        return bool(run["status"] == "COMPLETED")

    await wait_for(completed, 20, "the held run did not complete")
    assert finished["reason"] is None
    assert finished["held_reason"].startswith("concurrency key (none)"), finished
    # The run admitted at once was never held: nothing to explain.
    runs = [(await api.get(f"/v1/events/{i}/runs")).json()["data"][0] for i in ids]
    assert None in [r["held_reason"] for r in runs], runs
