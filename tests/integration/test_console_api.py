"""What the console shows comes from the public REST API: timelines, attempts, waits,
functions, counts. Real PostgreSQL, NATS and worker; no browser (see tests/console)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from ferryman_worker.gateway import Gateway, create_app
from tests.apps import console_app
from tests.harness import Stack

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    gateway = Gateway(stack.settings(api_token="tok"))
    await gateway.open()
    transport = httpx.ASGITransport(app=create_app(gateway))
    headers = {"Authorization": "Bearer tok"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gw", headers=headers
    ) as client:
        yield client
    await gateway.close()


def seconds(step: dict[str, Any], start: str = "started_at", end: str = "ended_at") -> float:
    return (datetime.fromisoformat(step[end]) - datetime.fromisoformat(step[start])).total_seconds()


async def run_of(api: httpx.AsyncClient, stack: Stack, event_id: str, status: str) -> Any:
    run = await stack.wait_run(event_id, status)
    return (await api.get(f"/v1/runs/{run[0]}")).json()["data"]


async def test_a_step_lasts_as_long_as_it_ran_and_every_attempt_keeps_its_error(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    await stack.start_worker(console_app.fm)
    event_id = await stack.send("console.timed", {"seconds": 0.4, "failures": 2})
    run = await run_of(api, stack, event_id, "COMPLETED")
    slow, flaky = run["steps"]
    assert 0.4 <= seconds(slow) < 2
    [only] = slow["attempt_history"]
    assert only["status"] == "COMPLETED"
    assert seconds(only) >= 0.4

    assert flaky["attempts"] == 3
    first, second, last = flaky["attempt_history"]
    assert [a["attempt"] for a in flaky["attempt_history"]] == [0, 1, 2]
    assert first["error"]["message"] == "flaky failure number 1"
    assert second["error"]["message"] == "flaky failure number 2"
    assert "RuntimeError" in first["error"]["stack"]
    assert last["status"] == "COMPLETED"
    assert last["error"] is None
    # The backoff before each next attempt (0.2 s) is visible, and the next attempt
    # started no earlier than it was due.
    for failed, following in ((first, second), (second, last)):
        assert 0.15 <= seconds(failed, "ended_at", "retry_at") <= 0.5
        assert following["started_at"] >= failed["retry_at"]
    # The step's bar spans every attempt: from the first start to the last end.
    assert flaky["started_at"] == first["started_at"]
    assert flaky["ended_at"] == last["ended_at"]
    assert run["events"][0]["name"] == "console.timed"
    assert run["parent"] is None


async def test_a_step_that_fails_for_good_lists_every_attempt(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    await stack.start_worker(console_app.fm)
    event_id = await stack.send("console.charge")
    run = await run_of(api, stack, event_id, "FAILED")
    charge = run["steps"][1]
    assert charge["status"] == "FAILED"
    history = charge["attempt_history"]
    assert [a["status"] for a in history] == ["FAILED", "FAILED"]
    assert {a["error"]["message"] for a in history} == {"the payment provider is switched off"}
    assert history[0]["retry_at"] is not None
    assert history[1]["retry_at"] is None  # no attempt after the last


async def test_a_wait_says_whether_an_event_or_the_timeout_resolved_it(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    await stack.start_worker(console_app.fm)
    timed_out = await stack.send("console.ask", {"ticket": "t-1", "timeout": "1s"})
    run = await run_of(api, stack, timed_out, "COMPLETED")
    wait = run["steps"][0]["wait"]
    assert wait["event"] == "console.reply"
    assert wait["match"] == "data.ticket"
    assert wait["resolved_by"] == "timeout"
    assert run["output"] == "no reply"

    answered = await stack.send("console.ask", {"ticket": "t-2", "timeout": "30s"})
    waiting = await stack.wait_run(answered, "WAITING")
    reply = await stack.send("console.reply", {"ticket": "t-2"})
    run = await run_of(api, stack, answered, "COMPLETED")
    assert run["run_id"] == waiting[0]
    wait = run["steps"][0]["wait"]
    assert (wait["resolved_by"], wait["event_id"]) == ("event", reply)


async def test_a_cancelled_wait_is_resolved_by_cancel(stack: Stack, api: httpx.AsyncClient) -> None:
    await stack.start_worker(console_app.fm)
    event_id = await stack.send("console.ask", {"ticket": "t-3", "timeout": "1h"})
    run_id = (await stack.wait_run(event_id, "WAITING"))[0]
    assert (await api.post(f"/v1/runs/{run_id}/cancel")).status_code == 200
    run = (await api.get(f"/v1/runs/{run_id}")).json()["data"]
    assert run["steps"][0]["wait"]["resolved_by"] == "cancel"


async def test_registered_functions_are_listed_with_their_recent_runs(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    await stack.start_worker(console_app.fm, console_app.bookings)
    await run_of(api, stack, await stack.send("console.charge"), "FAILED")
    await run_of(api, stack, await stack.send("console.timed", {"failures": 0}), "COMPLETED")
    functions = (await api.get("/v1/functions")).json()["data"]
    ids = [f["id"] for f in functions]
    assert "bookings-process-booking" in ids
    assert "console-timed" in ids
    charge = next(f for f in functions if f["id"] == "console-charge")
    assert charge["triggers"] == [{"event": "console.charge", "if": None}]
    assert charge["config"]["retries"] == 1
    assert charge["runs"]["last_hour"] == {"FAILED": 1}
    assert charge["failure_rate"] == 1.0
    assert charge["last_run_at"] is not None
    one = (await api.get("/v1/functions/console-timed")).json()["data"]
    assert one["failure_rate"] == 0.0
    missing = await api.get("/v1/functions/nope")
    assert missing.status_code == 404
    assert "GET /v1/functions" in missing.json()["error"]


async def test_runs_filter_by_event_and_count_what_a_bulk_action_would_touch(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    await stack.start_worker(console_app.fm)
    naps = [await stack.send("console.nap") for _ in range(3)]
    for event_id in naps:
        await stack.wait_run(event_id, "SLEEPING")
    failed = await stack.send("console.charge")
    await stack.wait_run(failed, "FAILED")

    page = (await api.get("/v1/runs", params={"event_id": naps[0]})).json()["data"]
    assert [r["event_id"] for r in page] == [naps[0]]

    async def count(**params: str) -> int:
        response = await api.get("/v1/runs/count", params=params)
        assert response.status_code == 200, response.text
        return int(response.json()["data"]["count"])

    assert await count() == 4
    assert await count(function_id="console-nap", action="cancel") == 3
    assert await count(action="replay") == 1
    assert await count(function_id="console-nap", action="replay") == 0
    for bad in ({"action": "delete"}, {"status": "ASLEEP"}, {"after": "yesterday"}, {"x": "1"}):
        response = await api.get("/v1/runs/count", params=bad)
        assert response.status_code == 400
        assert response.json()["error"]

    events = (await api.get("/v1/events")).json()["data"]
    by_id = {e["id"]: e for e in events}
    assert by_id[naps[0]]["runs"][0]["function_id"] == "console-nap"


async def test_the_console_page_and_its_modules_are_served_on_the_gateway_port(
    api: httpx.AsyncClient,
) -> None:
    page = await api.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "/static/app.js" in page.text
    assert "https://" not in page.text  # no CDN: it works air-gapped
    module = await api.get("/static/app.js")
    assert module.status_code == 200
    assert "javascript" in module.headers["content-type"]
    assert (await api.get("/static/vendor/preact.mjs")).status_code == 200
    assert (await api.get("/static/nothing.js")).status_code == 404


async def test_an_invoked_run_and_its_caller_link_to_each_other(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    await stack.start_worker(console_app.fm)
    event_id = await stack.send("console.call")
    parent = await run_of(api, stack, event_id, "COMPLETED")
    step = parent["steps"][0]
    assert step["op"] == "invoke"
    assert step["wait"]["resolved_by"] == "event"
    child = (await api.get(f"/v1/runs/{step['invoked_run_id']}")).json()["data"]
    assert child["function_id"] == "console-timed"
    assert child["parent"] == {"run_id": parent["run_id"], "step_id": "call-timed"}
    assert parent["output"] == child["output"]
