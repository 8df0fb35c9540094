"""Log formats: JSON with the run's fields, a console line a person reads, one line per outage."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from ferryman_worker.common import logs


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def capture(fmt: str) -> io.StringIO:
    stream = io.StringIO()
    logs.configure(fmt, worker="w-1", stream=stream)
    return stream


def test_json_lines_carry_the_run_fields() -> None:
    out = capture("json")
    logging.getLogger("ferryman.runs").info(
        "run %s step %r failed",
        "R1",
        "charge",
        extra={"run_id": "R1", "function_id": "f", "step_id": "charge", "attempt": 2},
    )
    line = json.loads(out.getvalue().strip())
    assert line["msg"] == "run R1 step 'charge' failed"
    assert (line["run_id"], line["function_id"], line["step_id"], line["attempt"]) == (
        "R1",
        "f",
        "charge",
        2,
    )
    assert line["worker"] == "w-1"
    assert line["level"] == "info"


def test_json_keeps_a_traceback_inside_its_one_line() -> None:
    out = capture("json")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("ferryman.worker").exception("it broke")
    [line] = out.getvalue().strip().split("\n")
    assert "RuntimeError: boom" in json.loads(line)["exception"]


def test_console_lines_lead_with_the_function() -> None:
    out = capture("console")
    logging.getLogger("ferryman.runs").info(
        "run R1 completed in 1.2 s", extra={"run_id": "R1", "function_id": "watch-flaky"}
    )
    text = out.getvalue()
    assert "watch-flaky" in text
    assert text.rstrip().endswith("run R1 completed in 1.2 s")


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="console, json"):
        logs.configure("xml")


def test_an_outage_logs_once_and_then_its_end() -> None:
    out = capture("console")
    outage = logs.Outage(logging.getLogger("ferryman.worker"), "PostgreSQL")
    for _ in range(50):
        outage.failed(ConnectionError("refused"))
    outage.ok()
    outage.ok()
    lines = out.getvalue().strip().split("\n")
    assert len(lines) == 2
    assert "PostgreSQL unavailable (ConnectionError: refused)" in lines[0]
    assert "PostgreSQL is back after" in lines[1]
    assert "(50 failed tries)" in lines[1]


@pytest.mark.parametrize(
    ("seconds", "said"), [(0.42, "0.42 s"), (1.24, "1.2 s"), (12.4, "12 s"), (185, "3 min 5 s")]
)
def test_durations_read_as_people_say_them(seconds: float, said: str) -> None:
    assert logs.seconds(seconds) == said
