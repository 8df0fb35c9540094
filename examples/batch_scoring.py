"""Batch scoring: one step per property, in parallel, then one report.

Send::

    {"name": "properties.batch.process",
     "data": {"orgId": "org-1", "batchId": "batch-1", "propertyIds": ["p-1", "p-2", "p-3"]}}

Side effects: one ``ml.score`` per property (``key`` is the property id) and one
``db.reports.put`` for ``batch-1`` with every score and the average. A failing score is
retried alone; the scores already computed are not recomputed.

The variant ``score-batch-per-org`` does the same for ``properties.org-batch.process``
with at most 10 runs executing at a time per ``orgId``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ferryman
from examples import services

fm = ferryman.Ferryman(app_id="batch-scoring")


def build_report(batch_id: str, scores: dict[str, int]) -> dict[str, Any]:
    report = {
        "batchId": batch_id,
        "scores": scores,
        "count": len(scores),
        "average": round(sum(scores.values()) / len(scores), 2) if scores else None,
    }
    services.db_put("reports", batch_id, report)
    return report


async def score_batch(ctx: ferryman.Context) -> dict[str, Any]:
    data = ctx.event.data
    ids: list[str] = list(data["propertyIds"])
    scores = await asyncio.gather(
        *(ctx.step.run(f"score-{pid}", services.score_property, pid) for pid in ids)
    )
    report: dict[str, Any] = await ctx.step.run(
        "report", build_report, data["batchId"], dict(zip(ids, scores, strict=True))
    )
    return report


@fm.function(id="score-batch", trigger=ferryman.on_event("properties.batch.process"))
async def score_properties(ctx: ferryman.Context) -> dict[str, Any]:
    return await score_batch(ctx)


@fm.function(
    id="score-batch-per-org",
    trigger=ferryman.on_event("properties.org-batch.process"),
    concurrency=[ferryman.Concurrency(limit=10, key="event.data.orgId")],
)
async def score_properties_per_org(ctx: ferryman.Context) -> dict[str, Any]:
    return await score_batch(ctx)
