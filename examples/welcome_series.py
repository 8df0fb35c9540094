"""Welcome series: fetch the user, welcome them, wait three days, send onboarding tips.

Send::

    {"name": "user/signup", "data": {"userId": "u-1"}}

Side effects: one ``users.get`` for ``u-1``, one ``email.send`` with template ``welcome``,
then — three days later, the run having left the worker meanwhile — one ``email.send``
with template ``onboarding-tips``. The user service knows any id (``u-1@example.com``);
seed a ``users`` row to choose the email.
"""

from __future__ import annotations

from typing import Any, ClassVar

import ferryman
from examples import services

fm = ferryman.Ferryman(app_id="welcome-series")


class UserSignedUp(ferryman.EventModel):
    """``user/signup``; the SDK validates it on send and when a run starts."""

    event_name: ClassVar[str] = "user/signup"

    userId: str  # the wire name, camelCase like every event in the examples


@fm.function(id="welcome-series", trigger=ferryman.on_event(UserSignedUp))
async def welcome_series(ctx: ferryman.Context) -> dict[str, Any]:
    signup = ctx.event.parsed(UserSignedUp)
    user = await ctx.step.run("fetch-user", services.user, signup.userId)
    await ctx.step.run(
        "send-welcome", services.send_email, user["email"], "welcome", {"name": user["name"]}
    )
    await ctx.step.sleep("wait-3-days", "3 days")
    await ctx.step.run(
        "send-tips", services.send_email, user["email"], "onboarding-tips", {"name": user["name"]}
    )
    return {"userId": signup.userId, "emails": 2}
