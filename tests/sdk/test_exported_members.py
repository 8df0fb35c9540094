"""The public surface of ``ferryman``: every name in ``__all__`` exists, and no more."""

from __future__ import annotations

import ferryman
import ferryman.testing

EXPORTED = {
    "Backoff", "BatchEvents", "Cancel", "Concurrency", "Context", "CronTrigger", "Debounce",
    "Event", "EventModel", "EventTrigger", "EventValidationError", "Ferryman",
    "FerrymanError", "Function", "FunctionConfig", "InvalidFunctionError",
    "LimitExceededError", "NonDeterminismError", "NonRetriableError", "Priority",
    "RateLimit", "RetryAfterError", "Singleton", "Step", "StepError", "Throttle",
    "Timeouts", "on_cron", "on_event",
}  # fmt: skip


def test_all_exports() -> None:
    assert set(ferryman.__all__) == EXPORTED
    assert len(ferryman.__all__) == len(EXPORTED)  # no duplicates


def test_every_export_is_defined_and_public() -> None:
    for name in ferryman.__all__:
        member = getattr(ferryman, name)
        assert not getattr(member, "__module__", "ferryman").startswith("ferryman_")


def test_the_testing_module_exports() -> None:
    assert set(ferryman.testing.__all__) == {
        "FlowResult",
        "InMemoryRuntime",
        "TestResult",
        "run_events",
        "run_function",
    }


def test_no_public_name_escapes_all() -> None:
    public = {n for n in vars(ferryman) if not n.startswith("_")}
    modules = {"errors", "testing", "webhooks"}  # submodules, reachable as attributes once imported
    assert public - modules == EXPORTED
