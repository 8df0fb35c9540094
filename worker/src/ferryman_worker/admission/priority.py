"""Priority: a CEL ``run`` expression over the event gives seconds of head start (+) or
delay (-) in the function's queue. A run's place is ``arrival - priority``, so a run
with priority 60 is admitted before runs queued up to a minute earlier."""

from __future__ import annotations

from ferryman import Event
from ferryman_worker.admission.policy import FlowPolicy

#: Inngest's SDKs document -600..600 seconds.
BOUND = 600.0


def seconds(policy: FlowPolicy, event: Event) -> float:
    expr = policy.keys.get("priority")
    if expr is None:
        return 0.0
    try:
        value = expr.evaluate({"event": event.to_wire()})
    except (ValueError, TypeError, RuntimeError, KeyError):
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return max(-BOUND, min(BOUND, float(value)))
