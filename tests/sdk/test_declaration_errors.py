"""Mistakes in a declaration fail at import, with a message that says what to write."""

from __future__ import annotations

import pytest

import ferryman

fm = ferryman.Ferryman(app_id="decl")


@pytest.mark.parametrize("name", ["a b", "orders.*", "a.>", "tab\there", "a..b", ".a", ""])
def test_an_event_name_no_event_can_have_is_refused_at_declaration(name: str) -> None:
    with pytest.raises(ferryman.InvalidFunctionError, match="event"):
        ferryman.on_event(name)


def test_a_cancel_on_event_name_is_checked_too() -> None:
    with pytest.raises(ValueError, match="contains whitespace"):

        @fm.function(
            id="cancels",
            trigger=ferryman.on_event("order.created"),
            cancel_on=[ferryman.Cancel(event="order cancelled")],
        )
        async def cancels(ctx: ferryman.Context) -> None: ...


def test_routable_names_are_accepted() -> None:
    assert ferryman.on_event("app/booking.created").event == "app/booking.created"
    assert ferryman.on_event("a-b_c.d").event == "a-b_c.d"


@pytest.mark.parametrize("bad", ["Bad_ID", "-x", "x-", "a" * 64, "with space"])
def test_an_invalid_function_id_says_what_an_id_looks_like_not_a_regex(bad: str) -> None:
    with pytest.raises(ferryman.InvalidFunctionError) as caught:

        @fm.function(id=bad, trigger=ferryman.on_event("x"))
        async def f(ctx: ferryman.Context) -> None: ...

    message = str(caught.value)
    assert "lowercase letters, digits and '-'" in message
    assert "e.g. 'process-booking'" in message
    assert "pattern" not in message
    assert "[a-z0-9]" not in message
    assert "Value error" not in message


async def test_fm_send_still_works_after_an_invoke_in_the_test_runtime() -> None:
    from ferryman.testing import run_function

    app = ferryman.Ferryman(app_id="sendafter")

    @app.function(id="child", trigger=ferryman.on_event("c"))
    async def child(ctx: ferryman.Context) -> int:
        return 2

    @app.function(id="parent", trigger=ferryman.on_event("p"))
    async def parent(ctx: ferryman.Context) -> str:
        await ctx.step.invoke("call", function=child)
        ids = await app.send(ferryman.Event(name="after.invoke", data={}))
        return f"sent {len(ids)}"

    result = await run_function(
        parent, {"name": "p", "data": {}}, functions={"sendafter-child": child}
    )
    assert result.output == "sent 1", result.error
