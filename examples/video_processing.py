"""Video processing: transcribe, summarize, save; three steps, each retried alone.

Send::

    {"name": "video.uploaded", "data": {"videoId": "v-1", "url": "s3://videos/v-1.mp4"}}

Side effects (see :mod:`examples.services`), once each: ``llm.transcribe`` for the url,
``llm.summarize``, then ``db.videos.put`` for ``v-1`` with the transcript and summary.
Script ``services.script("llm.summarize", fail=2)`` and summarizing is attempted three
times while transcription still happens once.
"""

from __future__ import annotations

from typing import Any

import ferryman
from examples import services

fm = ferryman.Ferryman(app_id="video-processing")


@fm.function(
    id="process-video",
    trigger=ferryman.on_event("video.uploaded"),
    # At most 20 videos in flight: transcription is the expensive part.
    concurrency=[ferryman.Concurrency(limit=20)],
)
async def process_video(ctx: ferryman.Context) -> dict[str, Any]:
    video_id, url = ctx.event.data["videoId"], ctx.event.data["url"]
    transcript = await ctx.step.run("transcribe", services.transcribe, url)
    summary = await ctx.step.run("summarize", services.summarize, transcript)
    await ctx.step.run(
        "write-to-db",
        services.db_put,
        "videos",
        video_id,
        {"url": url, "transcript": transcript, "summary": summary},
    )
    return {"videoId": video_id, "summary": summary}
