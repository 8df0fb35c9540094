"""Batch scoring: one parallel step per property, then one report."""

from __future__ import annotations

import ferryman
from examples import batch_scoring, services
from ferryman.testing import run_function

IDS = [f"p-{i}" for i in range(12)]
EVENT = {
    "name": "properties.batch.process",
    "data": {"orgId": "org-1", "batchId": "batch-1", "propertyIds": IDS},
}


async def test_every_property_is_scored_once_and_the_report_aggregates_them() -> None:
    result = await run_function(batch_scoring.score_properties, EVENT)

    assert result.status == "COMPLETED"
    assert {f"score-{pid}" for pid in IDS} <= set(result.steps)
    assert sorted(c["property_id"] for c in services.calls("ml.score")) == sorted(IDS)
    report = services.db_get("reports", "batch-1")
    assert report["count"] == 12
    assert report["scores"] == {pid: result.steps[f"score-{pid}"].output for pid in IDS}
    assert report == result.output


async def test_a_failing_property_is_rescored_alone() -> None:
    services.script("ml.score", key="p-3", fail=1)

    result = await run_function(batch_scoring.score_properties, EVENT)

    assert result.status == "COMPLETED"
    assert len(services.attempts("ml.score", property_id="p-3")) == 2
    for pid in IDS:
        assert services.count("ml.score", property_id=pid) == 1
    assert services.count("db.reports.put") == 1


async def test_the_per_org_variant_scores_the_same_way_under_a_concurrency_key() -> None:
    event = {**EVENT, "name": "properties.org-batch.process"}

    result = await run_function(batch_scoring.score_properties_per_org, event)

    assert result.status == "COMPLETED"
    assert result.output["count"] == 12
    assert batch_scoring.score_properties_per_org.config.concurrency == (
        ferryman.Concurrency(limit=10, key="event.data.orgId"),
    )
