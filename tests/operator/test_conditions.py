from ferryman_operator.conditions import Condition, is_true, merge


def test_transition_time_moves_only_on_status_change() -> None:
    first = merge(None, [Condition("Ready", False, "Pending", "wait")], 1, at="T1")
    assert first == [
        {
            "type": "Ready",
            "status": "False",
            "reason": "Pending",
            "message": "wait",
            "observedGeneration": 1,
            "lastTransitionTime": "T1",
        }
    ]
    same = merge(first, [Condition("Ready", False, "Other", "still")], 2, at="T2")
    assert same[0]["lastTransitionTime"] == "T1"
    assert same[0]["reason"] == "Other"
    flipped = merge(same, [Condition("Ready", True, "Ok")], 2, at="T3")
    assert flipped[0]["lastTransitionTime"] == "T3"
    assert is_true(flipped, "Ready")
    assert not is_true(flipped, "ConsumersReady")


def test_unknown_status_and_sorting() -> None:
    out = merge([{"type": "Z", "status": "True"}], [Condition("A", None, "Starting")], 1, at="T")
    assert [c["type"] for c in out] == ["A", "Z"]
    assert out[0]["status"] == "Unknown"
