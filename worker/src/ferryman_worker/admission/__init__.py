"""The admission stage: between an event and a run, "may this run start now?".

    trigger → arrive (skip · fold into a pending run · create, maybe not before T)
            → admit (start now · hold QUEUED with a reason) → run

Functions without flow control never come here: their runs are created already leased
(the fast path). Each option has its own module, used by one of the two phases:

- at arrival (``arriving.py`` runs them in this order): ``rate_limit``, ``singleton``,
  ``debounce``, ``batch``, then a new run with ``priority`` (its place in the queue),
  ``throttle`` (its start time) and ``timeouts`` (the start deadline);
- at admission (``admitting.py``, before every lease): ``concurrency``, and the run's
  ``not_before`` (throttle, debounce, batch); ``timeouts`` arms the finish deadline.

The state is in PostgreSQL (runs' flow columns, ``flow_gcra``, ``flow_pending``,
``skipped_events``; migration 0010); time rides on the timers table and JetStream
schedules, so the repair sweep re-arms what NATS loses.
"""

from ferryman_worker.admission.gate import Gate
from ferryman_worker.admission.policy import FlowPolicy, policy_of

__all__ = ["FlowPolicy", "Gate", "policy_of"]
