"""The recording stand-ins: a durable ledger shared across processes, scripted failures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from examples import services

ROOT = Path(__file__).resolve().parents[2]


def test_a_call_is_recorded_and_counted(ledger: Path) -> None:
    services.send_email("a@example.com", "welcome", {"name": "A"})

    [call] = services.calls("email.send")
    assert (call["to"], call["template"], call["context"]) == ("a@example.com", "welcome",
                                                               {"name": "A"})  # fmt: skip
    assert call["pid"] == os.getpid()
    assert services.count("email.send", to="a@example.com") == 1
    assert services.count("email.send", to="b@example.com") == 0
    assert ledger.read_text().count("\n") == 1


def test_records_written_by_another_process_are_seen_here(ledger: Path) -> None:
    code = "from examples import services; services.charge('c-1', 100, 'EUR', reference='r-1')"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)

    [charge] = services.calls("payments.charge")
    assert charge["key"] == "r-1"
    assert charge["pid"] != os.getpid()


def test_the_default_ledger_is_under_dot_ferryman_in_the_cwd(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(services.LEDGER_ENV)
    monkeypatch.chdir(tmp_path)

    services.task("noop")

    assert (tmp_path / ".ferryman" / "examples-ledger.jsonl").exists()


def test_a_script_fails_the_next_calls_then_lets_them_through() -> None:
    services.script("payments.charge", fail=2, error="rate_limited", retry_after=12)

    for _ in range(2):
        with pytest.raises(services.RateLimited) as info:
            services.charge("c-1", 100, "EUR", reference="r-1")
        assert info.value.retry_after == 12
    services.charge("c-1", 100, "EUR", reference="r-1")

    assert [c["outcome"] for c in services.attempts("payments.charge")] == [
        "rate_limited", "rate_limited", "ok"
    ]  # fmt: skip


def test_a_script_for_one_key_leaves_other_keys_alone() -> None:
    services.script("ml.score", key="p-1", fail=1, error="bad_request")

    services.score_property("p-2")
    with pytest.raises(services.BadRequest):
        services.score_property("p-1")
    services.score_property("p-1")


def test_an_unknown_scripted_error_is_refused() -> None:
    with pytest.raises(ValueError, match="error must be one of"):
        services.script("email.send", fail=1, error="teapot")


def test_the_database_folds_seeds_and_puts() -> None:
    services.seed("bookings", "b-1", {"status": "pending", "room": "r-1"})
    services.db_put("bookings", "b-1", {"status": "confirmed"})

    assert services.db_get("bookings", "b-1") == {"status": "confirmed", "room": "r-1"}
    assert services.db_get("bookings", "b-2") is None
    assert list(services.db_all("bookings")) == ["b-1"]
    assert services.count("db.bookings.put") == 1  # seeds are set-up, not side effects


def test_the_command_line_seeds_shows_and_resets(
    ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert services.main(["seed", "users", "u-1", '{"email": "u@example.com"}']) == 0
    assert services.main(["show"]) == 0
    assert '"table": "users"' in capsys.readouterr().out
    assert services.main(["reset"]) == 0
    assert not ledger.exists()
    assert services.main(["bogus"]) == 2
