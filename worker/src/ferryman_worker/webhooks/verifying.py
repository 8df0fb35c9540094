"""Signature checks, constant-time, on the raw body exactly as received.

A failed check raises :class:`Rejected` with a short machine reason (the metric label)
and a message for the sender that never echoes the expected signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time
from collections.abc import Mapping
from pathlib import Path

from ferryman.webhooks import Verification

STRIPE_HEADER = "stripe-signature"
GITHUB_HEADER = "x-hub-signature-256"


class Rejected(Exception):
    """The delivery did not prove it came from the sender: 401, nothing stored."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class NotConfigured(Exception):
    """The gateway lacks the webhook's secret: 503 (the sender retries once it is fixed)."""


def secret_of(verification: Verification, secrets_dir: Path) -> bytes:
    """The signing secret, read at each delivery so a rotated Secret applies at once."""
    if verification.secret_env:
        value = os.environ.get(verification.secret_env, "")
        if not value:
            raise NotConfigured(f"environment variable {verification.secret_env} is not set")
        return value.encode()
    if verification.secret_ref:
        name, key = verification.secret_ref
        path = secrets_dir / name / key
        try:
            value = path.read_text().strip()
        except OSError:
            raise NotConfigured(
                f"Secret {name!r} key {key!r} is not mounted at {path} "
                "(list the Secret in the chart's gateway.webhookSecrets)"
            ) from None
        if not value:
            raise NotConfigured(f"Secret {name!r} key {key!r} is empty")
        return value.encode()
    raise NotConfigured("no secret configured")


def verify(
    verification: Verification,
    body: bytes,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    secrets_dir: Path,
    now: float | None = None,
) -> None:
    """Return if the delivery is authentic; raise :class:`Rejected` otherwise.

    ``headers`` must have lowercase names.
    """
    scheme = verification.type
    if scheme == "none":
        return
    secret = secret_of(verification, secrets_dir)
    if scheme == "github":
        _signed_header(headers, GITHUB_HEADER, "sha256=", "hex", secret, body)
    elif scheme == "hmac":
        header = (verification.header or "").lower()
        _signed_header(headers, header, verification.prefix, verification.encoding, secret, body)
    elif scheme == "stripe":
        _stripe(headers, secret, body, verification.tolerance.total_seconds(), now)
    elif scheme == "token":
        if verification.header:
            sent = headers.get(verification.header.lower())
            where = f"header {verification.header}"
        else:
            sent = query.get(verification.query_param or "")
            where = f"query parameter {verification.query_param}"
        if sent is None:
            raise Rejected("missing_signature", f"the {where} is missing")
        if not hmac.compare_digest(sent.encode(), secret):
            raise Rejected("bad_signature", f"the {where} does not match")


def _digest(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, payload, hashlib.sha256).digest()


def _signed_header(
    headers: Mapping[str, str], header: str, prefix: str, encoding: str, secret: bytes,
    body: bytes,
) -> None:  # fmt: skip
    sent = headers.get(header)
    if sent is None:
        raise Rejected("missing_signature", f"the signature header {header} is missing")
    if not sent.startswith(prefix):
        raise Rejected("malformed_signature", f"the {header} header must start with {prefix!r}")
    try:
        value = sent[len(prefix) :].strip()
        given = (
            bytes.fromhex(value) if encoding == "hex" else base64.b64decode(value, validate=True)
        )
    except (ValueError, binascii.Error):
        raise Rejected("malformed_signature", f"the {header} header is not {encoding}") from None
    if not hmac.compare_digest(given, _digest(secret, body)):
        raise Rejected("bad_signature", f"the {header} signature does not match the body")


def _stripe(
    headers: Mapping[str, str], secret: bytes, body: bytes, tolerance: float, now: float | None
) -> None:
    sent = headers.get(STRIPE_HEADER)
    if sent is None:
        raise Rejected("missing_signature", "the Stripe-Signature header is missing")
    stamp, signatures = None, []
    for part in sent.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            stamp = value
        elif key == "v1":
            signatures.append(value)
    if stamp is None or not stamp.isdigit() or not signatures:
        raise Rejected(
            "malformed_signature", "the Stripe-Signature header needs t=<time> and v1=<signature>"
        )
    expected = _digest(secret, stamp.encode() + b"." + body).hex().encode()
    # Check every v1 (Stripe sends two while a secret is being rolled), without stopping early.
    matched = False
    for signature in signatures:
        matched |= hmac.compare_digest(signature.strip().lower().encode(), expected)
    if not matched:
        raise Rejected("bad_signature", "no v1 signature in Stripe-Signature matches the body")
    age = (time.time() if now is None else now) - int(stamp)
    if abs(age) > tolerance:
        raise Rejected(
            "stale_timestamp",
            f"the Stripe-Signature timestamp is {int(abs(age))} s away from now; "
            f"the tolerance is {int(tolerance)} s (a replayed delivery?)",
        )
