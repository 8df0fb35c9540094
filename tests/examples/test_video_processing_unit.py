"""The video processing example: three steps, each retried alone."""

from __future__ import annotations

from examples import services, video_processing
from ferryman.testing import run_function

EVENT = {"name": "video.uploaded", "data": {"videoId": "v-1", "url": "s3://videos/v-1.mp4"}}


async def test_a_video_is_transcribed_summarized_and_saved_once() -> None:
    result = await run_function(video_processing.process_video, EVENT)

    assert result.status == "COMPLETED"
    assert services.count("llm.transcribe", video_url="s3://videos/v-1.mp4") == 1
    assert services.count("llm.summarize") == 1
    assert services.count("db.videos.put", id="v-1") == 1
    saved = services.db_get("videos", "v-1")
    assert saved["summary"] == result.output["summary"]


async def test_a_flaky_summarizer_is_retried_without_transcribing_again() -> None:
    services.script("llm.summarize", fail=2)

    result = await run_function(video_processing.process_video, EVENT)

    assert result.status == "COMPLETED"
    assert result.steps["summarize"].attempts == 3
    assert len(services.attempts("llm.summarize")) == 3
    assert services.count("llm.transcribe") == 1
    assert services.count("db.videos.put") == 1
