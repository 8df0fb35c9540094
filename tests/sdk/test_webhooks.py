"""Declaring webhooks in code: a bad transform or verification is refused at declaration."""

from __future__ import annotations

import re

import pytest

import ferryman
from ferryman import webhooks
from ferryman.webhooks import InvalidWebhookError, parse_webhook

TRANSFORM = '{"name": "stripe/" + body.type, "id": body.id, "data": body.data.object}'


def test_a_webhook_declared_in_code_is_the_spec_a_webhook_resource_holds() -> None:
    fm = ferryman.Ferryman(app_id="shop")
    spec = fm.webhook(
        name="stripe",
        transform=TRANSFORM,
        verify=webhooks.stripe(secret_ref=("stripe", "signing-secret"), tolerance="10m"),
        content_types=["application/json"],
        max_body_bytes=65536,
    )
    assert fm.webhooks == {"stripe": spec}
    assert spec.to_spec() == {
        "transform": TRANSFORM,
        "verification": {
            "type": "stripe",
            "secretRef": {"name": "stripe", "key": "signing-secret"},
            "tolerance": "10m",
        },
        "contentTypes": ["application/json"],
        "maxBodyBytes": 65536,
    }
    assert parse_webhook("stripe", spec.to_spec()).to_spec() == spec.to_spec()


@pytest.mark.parametrize(
    ("name", "spec", "message"),
    [
        ("Stripe", {"transform": "1", "verification": {"type": "none"}}, "lowercase letters"),
        ("a", {"transform": "body.", "verification": {"type": "none"}}, "not a valid CEL"),
        ("a", {"verification": {"type": "none"}}, "transform (a CEL expression) is required"),
        ("a", {"transform": "body"}, "verification is required"),
        ("a", {"transform": "body", "verification": {"type": "md5"}}, "is not one of"),
        ("a", {"transform": "body", "verification": {"type": "github"}}, "exactly one of"),
        (
            "a",
            {"transform": "body", "verification": {"type": "hmac", "secretEnv": "S"}},
            "needs the header",
        ),
        (
            "a",
            {"transform": "body", "verification": {"type": "none", "secretEnv": "S"}},
            "takes no secretEnv",
        ),
        (
            "a",
            {"transform": "body", "verification": {"type": "token", "secretEnv": "S"}},
            "header or queryParam",
        ),
        (
            "a",
            {
                "transform": "body",
                "verification": {"type": "stripe", "secretEnv": "S", "tolerance": "forever"},
            },
            "not a duration",
        ),
        (
            "a",
            {"transform": "body", "verification": {"type": "github", "secretRef": {"name": "x"}}},
            "secretRef must be",
        ),
        (
            "a",
            {"transform": "body", "verification": {"type": "none"}, "contentTypes": ["text/xml"]},
            "contentTypes",
        ),
        (
            "a",
            {"transform": "body", "verification": {"type": "none"}, "maxBodyBytes": 10**9},
            "maxBodyBytes",
        ),
        ("a", {"transform": "body", "verification": {"type": "none"}, "retries": 3}, "unknown"),
    ],
)
def test_bad_specs_are_refused_with_the_reason(name: str, spec: object, message: str) -> None:
    with pytest.raises(InvalidWebhookError, match=re.escape(message)):
        parse_webhook(name, spec)


def test_declaring_twice_or_without_a_scheme_is_refused() -> None:
    fm = ferryman.Ferryman(app_id="shop")
    fm.webhook(name="a", transform="body", verify=webhooks.none())
    with pytest.raises(ferryman.InvalidFunctionError, match="declared twice"):
        fm.webhook(name="a", transform="body", verify=webhooks.none())
    with pytest.raises(ferryman.InvalidFunctionError, match="verify must be one of"):
        fm.webhook(name="b", transform="body", verify="stripe")  # type: ignore[arg-type]
    with pytest.raises(InvalidWebhookError, match="exactly one of secretEnv"):
        webhooks.github(secret_env="A", secret_ref=("b", "c"))
