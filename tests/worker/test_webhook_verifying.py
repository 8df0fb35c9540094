"""Signature schemes against signatures computed the way each sender computes them."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from ferryman import webhooks
from ferryman_worker.webhooks.verifying import NotConfigured, Rejected, verify

BODY = b'{"id": "evt_1"}'


def sign(secret: bytes, payload: bytes) -> str:
    return hmac.new(secret, payload, hashlib.sha256).hexdigest()


def test_stripe_accepts_any_of_several_v1_signatures_while_a_secret_rolls(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("S", "whsec_new")
    scheme = webhooks.stripe(secret_env="S", tolerance="5m")
    now = 1_700_000_000
    old = sign(b"whsec_old", f"{now}.".encode() + BODY)
    new = sign(b"whsec_new", f"{now}.".encode() + BODY)
    header = {"stripe-signature": f"t={now},v1={old},v1={new},v0=ignored"}
    verify(scheme, BODY, header, {}, tmp_path, now=now + 299)
    with pytest.raises(Rejected) as stale:
        verify(scheme, BODY, header, {}, tmp_path, now=now + 301)
    assert stale.value.reason == "stale_timestamp"
    with pytest.raises(Rejected) as future:
        verify(scheme, BODY, header, {}, tmp_path, now=now - 301)
    assert future.value.reason == "stale_timestamp"


def test_a_mounted_secret_is_read_at_each_delivery(tmp_path: Path) -> None:
    scheme = webhooks.github(secret_ref=("gh", "secret"))
    with pytest.raises(NotConfigured, match="not mounted"):
        verify(scheme, BODY, {}, {}, tmp_path)
    (tmp_path / "gh").mkdir()
    (tmp_path / "gh" / "secret").write_text("one")
    verify(scheme, BODY, {"x-hub-signature-256": "sha256=" + sign(b"one", BODY)}, {}, tmp_path)
    (tmp_path / "gh" / "secret").write_text("two")  # rotated
    with pytest.raises(Rejected):
        verify(scheme, BODY, {"x-hub-signature-256": "sha256=" + sign(b"one", BODY)}, {}, tmp_path)


def test_hmac_hex_is_case_insensitive_and_the_prefix_is_required(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("K", "k")
    scheme = webhooks.hmac_sha256(header="X-Sig", prefix="v1=", secret_env="K")
    verify(scheme, BODY, {"x-sig": "v1=" + sign(b"k", BODY).upper()}, {}, tmp_path)
    with pytest.raises(Rejected) as missing_prefix:
        verify(scheme, BODY, {"x-sig": sign(b"k", BODY)}, {}, tmp_path)
    assert missing_prefix.value.reason == "malformed_signature"
    with pytest.raises(Rejected) as not_hex:
        verify(scheme, BODY, {"x-sig": "v1=zz"}, {}, tmp_path)
    assert not_hex.value.reason == "malformed_signature"
