"""Fuzzing the gateway over real HTTP (uvicorn, PostgreSQL, NATS): no input gives a 5xx.

- schemathesis generates requests for every operation in ``GET /openapi.json`` (valid and
  invalid: examples, boundary values, random fuzz) with an operate token and checks that
  none answers a server error; ``FERRYMAN_FUZZ_CASES`` sets how many (CI: at least 5,000).
- hypothesis throws hostile JSON at ``POST /e/{key}`` (deep nesting, NUL, lone surrogates,
  NaN, huge integers, wrong types, duplicate ids) and checks the answer is 200 with every
  event stored, or 4xx with nothing stored.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "fuzz-operate-token"
KEY = "fuzz-key"
CASES = int(os.environ.get("FERRYMAN_FUZZ_CASES", "5000"))


@pytest.fixture
def gateway(stack: Stack, tmp_path: Path) -> Iterator[str]:
    """``ferryman gateway`` as a process, on a free port, with auth on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**stack.env(), "FERRYMAN_API_TOKEN": TOKEN, "FERRYMAN_EVENT_KEY": KEY}
    log = (tmp_path / "gateway.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ferryman_worker.cli", "gateway", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # a loaded machine starts Python slowly
        while True:
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the gateway did not start: " + (tmp_path / "gateway.log").read_text())
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
    # Whatever the fuzzers did, the gateway logged no unexpected error.
    assert "unexpected error" not in (tmp_path / "gateway.log").read_text(errors="replace")


@pytest.mark.timeout(3000)
def test_schemathesis_finds_no_server_error(gateway: str, tmp_path: Path) -> None:
    operations = len(httpx.get(f"{gateway}/openapi.json").json()["paths"])
    # Hypothesis stops early on small input spaces, so a round may generate fewer cases than
    # asked: further rounds with other seeds until CASES are reached (one round usually).
    per_operation = int(CASES * 1.3) // operations + 1
    cases, rounds = 0, 0
    while cases < CASES and rounds < 4:
        rounds += 1
        result = subprocess.run(
            [
                str(Path(sys.executable).with_name("schemathesis")),
                "run",
                f"{gateway}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                str(per_operation),
                "--header",
                f"Authorization: Bearer {TOKEN}",
                "--phases",
                "examples,coverage,fuzzing",
                "--workers",
                "2",
                "--seed",
                str(6 + rounds),
                "--no-color",
                "--suppress-health-check",
                "all",
            ],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
            cwd=tmp_path,
        )
        out = result.stdout + result.stderr
        assert result.returncode == 0, out[-6000:]
        generated = re.search(r"Test cases:\s*(\d+) generated", out)
        assert generated, out[-3000:]
        cases += int(generated.group(1))
    print(f"schemathesis: {cases} cases in {rounds} round(s), 0 server errors")
    assert cases >= CASES


# -- hypothesis: POST /e/{key} ------------------------------------------------------------

_weird_text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfff", "\u2028", "*", ">", "a b", "", "."]),
)
_numbers = st.one_of(
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**64 + 2),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=True, allow_infinity=True),
)
_json = st.recursive(
    st.none() | st.booleans() | _numbers | _weird_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_weird_text, inner, max_size=4),
    max_leaves=20,
)
_names = st.one_of(st.sampled_from(["order.created", "app/user.signup", "a-b_c"]), _weird_text)
_event = st.fixed_dictionaries(
    {"name": _names},
    optional={
        "data": st.one_of(st.dictionaries(_weird_text, _json, max_size=5), _json),
        "id": st.one_of(st.sampled_from(["dup", "e-1", ""]), _weird_text, _numbers),
        "ts": st.one_of(_numbers, _weird_text),
        "user": _json,
    },
)


def _deep(depth: int) -> str:
    return '{"name": "deep", "data": {"x": ' + "[" * depth + "]" * depth + "}}"


_clean = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=10
    ),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=5).filter(lambda k: "\x00" not in k), inner, max_size=3)
    ),
    max_leaves=10,
)
_valid_event = st.fixed_dictionaries(
    {"name": st.sampled_from(["order.created", "app/user.signup", "a-b_c"])},
    optional={"data": st.dictionaries(st.sampled_from(["a", "b", "c"]), _clean, max_size=3)},
)
_bodies = st.one_of(
    _valid_event.map(lambda e: json.dumps(e).encode()),
    st.lists(_valid_event, min_size=1, max_size=5).map(lambda es: json.dumps(es).encode()),
    _event.map(lambda e: json.dumps(e, allow_nan=True).encode()),
    st.lists(_event, max_size=6).map(lambda es: json.dumps(es, allow_nan=True).encode()),
    _json.map(lambda v: json.dumps(v, allow_nan=True).encode()),
    st.integers(min_value=60, max_value=1500).map(lambda d: _deep(d).encode()),
    st.binary(max_size=64),
)


@pytest.mark.timeout(900)
def test_hypothesis_post_e_answers_200_with_all_stored_or_4xx_with_none(
    stack: Stack, gateway: str
) -> None:
    seen = {"ok": 0, "refused": 0}
    with (
        httpx.Client(base_url=gateway, timeout=30) as client,
        psycopg.connect(stack.db_url, autocommit=True) as db,
    ):

        def stored() -> int:
            row = db.execute("SELECT count(*) FROM events").fetchone()
            return int(row[0]) if row else 0

        @settings(
            max_examples=int(os.environ.get("FERRYMAN_FUZZ_EVENTS", "1000")),
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(body=_bodies)
        def post(body: bytes) -> None:
            before = stored()
            response = client.post(f"/e/{KEY}", content=body)
            assert response.status_code < 500, (response.status_code, response.text, body[:300])
            answer: Any = response.json()
            if response.status_code == 200:
                seen["ok"] += 1
                ids = answer["ids"]
                row = db.execute(
                    "SELECT count(*) FROM events WHERE id = ANY(%s)", (ids,)
                ).fetchone()
                assert row is not None
                assert row[0] == len(set(ids))
            else:
                seen["refused"] += 1
                assert response.status_code in (400, 413), response.text
                assert answer["error"]
                assert stored() == before, body[:300]

        post()
    print(f"hypothesis POST /e: {seen['ok']} accepted, {seen['refused']} refused, 0 server errors")
    assert seen["ok"] > 0
    assert seen["refused"] > 0
