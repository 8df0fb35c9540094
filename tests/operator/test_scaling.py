from ferryman_operator.scaling import ScalePolicy, decide, fixed_replicas

POLICY = ScalePolicy(min=0, max=5, target=10, scale_down_delay=30)


def test_policy_from_spec() -> None:
    assert ScalePolicy.from_spec({"replicas": 2}) is None
    assert ScalePolicy.from_spec({"autoscaling": {"max": 3}}) == ScalePolicy(min=0, max=3)
    p = ScalePolicy.from_spec(
        {"autoscaling": {"min": 1, "max": 3, "targetBacklogPerReplica": 4, "scaleDownDelay": "5s"}}
    )
    assert p == ScalePolicy(min=1, max=3, target=4, scale_down_delay=5)
    assert fixed_replicas({}) == 1
    assert fixed_replicas({"replicas": 0}) == 0


def test_scales_up_at_once_and_caps_at_max() -> None:
    d = decide(POLICY, pending=25, in_flight=0, current=0, low_since=None, now=100)
    assert (d.replicas, d.reason) == (3, "ScaledUp")
    d = decide(POLICY, pending=1000, in_flight=0, current=3, low_since=None, now=100)
    assert d.replicas == 5


def test_idle_pool_stays_at_min() -> None:
    d = decide(POLICY, pending=0, in_flight=0, current=0, low_since=None, now=100)
    assert (d.replicas, d.reason) == (0, "Steady")
    d = decide(ScalePolicy(min=2, max=5), pending=0, in_flight=0, current=2, low_since=None, now=1)
    assert d.replicas == 2


def test_scale_down_waits_for_the_delay() -> None:
    d = decide(POLICY, pending=0, in_flight=0, current=3, low_since=None, now=100)
    assert (d.replicas, d.low_since, d.reason) == (3, 100, "ScaleDownPending")
    d = decide(POLICY, pending=0, in_flight=0, current=3, low_since=100, now=120)
    assert (d.replicas, d.low_since) == (3, 100)
    d = decide(POLICY, pending=0, in_flight=0, current=3, low_since=100, now=131)
    assert (d.replicas, d.low_since, d.reason) == (0, None, "ScaledDown")


def test_never_below_the_work_in_flight() -> None:
    # 2 jobs held by workers: keep 2 workers even though the backlog alone wants 1.
    d = decide(POLICY, pending=0, in_flight=2, current=4, low_since=0, now=1000)
    assert (d.replicas, d.reason) == (2, "ScaledDown")
    d = decide(POLICY, pending=0, in_flight=3, current=3, low_since=0, now=1000)
    assert (d.replicas, d.reason) == (3, "WorkInFlight")


def test_backlog_rising_again_cancels_a_pending_scale_down() -> None:
    d = decide(POLICY, pending=30, in_flight=0, current=3, low_since=50, now=100)
    assert (d.replicas, d.low_since) == (3, None)
