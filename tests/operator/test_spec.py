import pytest

from ferryman_operator import spec as fspec


def test_parse_duration_accepts_the_crd_syntax() -> None:
    assert fspec.parse_duration("30s") == 30
    assert fspec.parse_duration("1h30m") == 5400
    assert fspec.parse_duration("500ms") == 0.5
    assert fspec.parse_duration("1.5m") == 90


@pytest.mark.parametrize("text", ["", "10", "10 minutes", "1d", "s"])
def test_parse_duration_rejects_other_text(text: str) -> None:
    with pytest.raises(fspec.SpecError, match="not a duration"):
        fspec.parse_duration(text)


SPEC = {
    "code": {"module": "examples.video_processing", "function": "process_video"},
    "workerPool": "video",
    "triggers": [
        {"event": "video.uploaded"},
        {"event": "video.reprocess"},
        {"event": "video.uploaded"},
        {"cron": "0 3 * * *", "timezone": "Europe/Paris"},
    ],
    "concurrency": [{"limit": 5, "key": "event.data.org"}, {"limit": 8}],
    "delivery": {"ackWait": "2m", "maxDeliver": 5},
}


def test_topology_from_spec() -> None:
    topo = fspec.topology("video-processing-process-video", SPEC)
    assert topo.function_id == "video-processing-process-video"
    assert topo.events == ("video.reprocess", "video.uploaded")
    assert [(c.expression, c.timezone) for c in topo.crons] == [("0 3 * * *", "Europe/Paris")]
    assert topo.max_ack_pending == 1000  # concurrency is the admission stage's, not NATS'
    assert topo.ack_wait_seconds == 120
    assert topo.max_deliver == 5
    assert fspec.consumer_names(topo) == [
        "trigger-video-processing-process-video",
        "work-video-processing-process-video",
        "timers-video-processing-process-video",
    ]


def test_function_id_defaults_to_the_name_and_can_be_set() -> None:
    assert fspec.function_id("a", {}) == "a"
    assert fspec.function_id("a", {"functionId": "b"}) == "b"


def test_max_ack_pending_defaults_and_overrides() -> None:
    assert fspec.max_ack_pending({}) == 1000
    assert fspec.max_ack_pending({"concurrency": [{"limit": 3, "key": "k"}]}) == 1000
    assert fspec.max_ack_pending({"concurrency": [{"limit": 3}]}) == 1000
    assert (
        fspec.max_ack_pending({"concurrency": [{"limit": 3}], "delivery": {"maxAckPending": 7}})
        == 7
    )


def test_no_triggers_is_a_spec_error() -> None:
    with pytest.raises(fspec.SpecError, match="no triggers"):
        fspec.topology("x", {"triggers": []})


def test_triggers_summary_is_short() -> None:
    assert fspec.triggers_summary(SPEC).startswith("video.uploaded, video.reprocess")
    assert "cron(0 3 * * * Europe/Paris)" in fspec.triggers_summary(SPEC, limit=200)
    assert len(fspec.triggers_summary({"triggers": [{"event": "e" * 100}]})) == 60


def test_trigger_consumer_starts_when_the_resource_was_created() -> None:
    """Events sent after `kubectl apply` but before the operator reconciled still run."""
    from datetime import UTC, datetime, timedelta

    from nats.js.api import DeliverPolicy

    created = datetime.now(UTC) - timedelta(minutes=2)
    topo = fspec.topology("orders", {"triggers": [{"event": "order.created"}]}, created.isoformat())
    trigger = topo.consumer_configs()[0][1]
    assert trigger.deliver_policy == DeliverPolicy.BY_START_TIME
    assert trigger.opt_start_time == created

    old = fspec.topology(
        "orders", {"triggers": [{"event": "order.created"}]}, "2020-01-01T00:00:00Z"
    )
    start = old.consumer_configs()[0][1].opt_start_time
    assert start is not None
    assert datetime.now(UTC) - start < timedelta(hours=1, minutes=1), (
        "a consumer re-created long after must not re-deliver days of events"
    )
