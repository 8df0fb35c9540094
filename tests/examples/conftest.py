"""Example apps under test: each test gets an empty ledger of its own."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import ferryman
from ferryman.testing import TestResult, run_function

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `examples` is a top-level package of the repository
    sys.path.insert(0, str(ROOT))

from examples import services  # noqa: E402


@pytest.fixture(autouse=True)
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ledger.jsonl"
    monkeypatch.setenv(services.LEDGER_ENV, str(path))
    return path


@pytest.fixture
def run_failure_handler() -> Any:
    """The coroutine function below, for tests to call."""
    return _run_failure_handler


async def _run_failure_handler(
    app: ferryman.Ferryman, fn: ferryman.Function, event: dict[str, Any], result: TestResult
) -> TestResult:
    """Run ``fn``'s on_failure handler as the worker would after ``result`` failed.

    ``ferryman.testing.run_function`` does not run failure handlers, and the SDK does not
    define the data of ``ferryman/function.failed``; this follows Inngest's shape
    (``function_id``, ``run_id``, ``error``, ``event``).
    """
    # TODO(sdk): replace with a testing helper once the SDK owns the failed-event shape.
    assert result.status == "FAILED"
    failed = ferryman.Event(
        name="ferryman/function.failed",
        data={"function_id": fn.id, "run_id": "test-run", "error": result.error, "event": event},
    )
    handler = app.functions[f"{fn.id}-failure"]
    assert handler.accepts(failed), "the failure handler must accept its function's failure"
    outcome = await run_function(handler, failed)
    assert outcome.status == "COMPLETED", outcome.error
    return outcome
