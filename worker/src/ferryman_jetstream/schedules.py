"""Time, kept by JetStream message schedules (nats-server >= 2.14).

A schedule definition is an ordinary message in the TIMERS stream whose ``Nats-Schedule``
header says when the server republishes its body to ``Nats-Schedule-Target``. Its subject
is its identity: publishing the same subject again replaces it (that is how a retry timer
is moved and how debounce works), and purging the subject cancels it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from nats.js import JetStreamContext

from ferryman_jetstream.subjects import (
    TIMERS_STREAM,
    cron_definition_subject,
    cron_tick_subject,
    timer_definition_subject,
    timer_fired_subject,
)

# A firing is consumed and acked at once, but the TIMERS stream keeps messages by age, not
# by ack: the TTL is what removes it. One hour bounds the stream to an hour of firings (a
# week of them was ~460,000 messages for every ten minutes of the soak, bench (h)); a
# firing no worker read within the hour is not lost: PostgreSQL has the timer, and the
# repair sweep re-arms it, as it does cron ticks missed while every worker was down.
FIRED_TTL = "1h"


def _at(when: datetime) -> str:
    when = when.astimezone(UTC)
    return "@at " + when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


async def publish_at(
    js: JetStreamContext,
    function_id: str,
    run_id: str,
    timer_id: str,
    when: datetime,
    payload: bytes,
) -> None:
    """Arm (or move) a one-shot timer that delivers ``payload`` to the function's timer consumer."""
    await js.publish(
        timer_definition_subject(function_id, run_id, timer_id),
        payload,
        stream=TIMERS_STREAM,
        headers={
            "Nats-Schedule": _at(when),
            "Nats-Schedule-Target": timer_fired_subject(function_id),
            "Nats-Schedule-TTL": FIRED_TTL,
        },
    )


async def cancel_timer(js: JetStreamContext, function_id: str, run_id: str, timer_id: str) -> None:
    await js.purge_stream(
        TIMERS_STREAM, subject=timer_definition_subject(function_id, run_id, timer_id)
    )


@dataclass(frozen=True)
class CronSchedule:
    """A 5-field cron expression and an IANA time zone (UTC when not given)."""

    expression: str
    timezone: str = "UTC"

    def nats_spec(self) -> str:
        # JetStream cron has a leading seconds field; Ferryman ticks on the minute.
        return "0 " + self.expression


async def publish_cron(
    js: JetStreamContext,
    function_id: str,
    schedules: list[CronSchedule],
    *,
    only_if_changed: bool = False,
) -> None:
    """Make the function's cron definitions exactly ``schedules``.

    With ``only_if_changed``, a definition JetStream already holds as wanted is not published
    again (a periodic reconciler, like the operator's drift check, would else add a message
    to the TIMERS stream at every pass)."""
    for index, schedule in enumerate(schedules):
        subject = cron_definition_subject(function_id, index)
        headers = {
            "Nats-Schedule": schedule.nats_spec(),
            "Nats-Schedule-Target": cron_tick_subject(function_id),
            "Nats-Schedule-Time-Zone": schedule.timezone,
            "Nats-Schedule-TTL": FIRED_TTL,
        }
        if only_if_changed:
            try:
                held = await js.get_last_msg(TIMERS_STREAM, subject)
            except Exception:  # "no message": publish it
                held = None
            if (
                held is not None
                and held.headers
                and all(held.headers.get(k) == v for k, v in headers.items())
            ):
                continue
        await js.publish(subject, b"{}", stream=TIMERS_STREAM, headers=headers)
    for index in range(len(schedules), len(schedules) + 10):
        await js.purge_stream(TIMERS_STREAM, subject=cron_definition_subject(function_id, index))


async def cron_definitions(js: JetStreamContext, function_id: str) -> list[str]:
    """The cron specs JetStream holds for a function (for drift checks and status)."""
    found: list[str] = []
    for index in range(10):
        try:
            msg = await js.get_last_msg(TIMERS_STREAM, cron_definition_subject(function_id, index))
        except Exception:
            continue
        if msg.headers and "Nats-Schedule" in msg.headers:
            found.append(msg.headers["Nats-Schedule"])
    return found
