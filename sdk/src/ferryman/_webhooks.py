"""Webhooks: a named endpoint a third party posts its own payload to, turned into events.

One spec, three producers: ``fm.webhook(...)`` in code, the ``Webhook`` custom resource
(``crds/ferryman.dev_webhooks.yaml``) and whatever the gateway reads back from JetStream.
All of them go through :func:`parse_webhook`, so a bad transform or verification is
refused the same way everywhere, with the same message. The spec dict uses the CR's
camelCase field names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from ferryman._durations import Duration, format_duration, parse_duration
from ferryman._expressions import Expression
from ferryman.errors import FerrymanError

NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
HEADER = re.compile(r"^[A-Za-z0-9-]{1,100}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")
SECRET_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
DEFAULT_CONTENT_TYPES = (JSON, FORM)
DEFAULT_MAX_BODY = 1024 * 1024
MAX_BODY_LIMIT = 8 * 1024 * 1024
DEFAULT_TOLERANCE = timedelta(minutes=5)
EXAMPLE = 'write it like {"name": "stripe/" + body.type, "id": body.id, "data": body.data}'
SCHEMES = ("hmac", "github", "stripe", "token", "none")
Scheme = Literal["hmac", "github", "stripe", "token", "none"]


class InvalidWebhookError(FerrymanError, ValueError):
    """A webhook's declaration is wrong; the message names the field and the fix."""


@dataclass(frozen=True)
class Verification:
    """How a delivery proves it came from the sender (checked before anything is stored).

    ``secret_env`` names an environment variable of the gateway; ``secret_ref`` is
    ``(secret name, key)`` of a Kubernetes Secret mounted into the gateway (the chart's
    ``gateway.webhookSecrets``). Exactly one of them, except for ``none``.
    """

    type: Scheme
    secret_env: str | None = None
    secret_ref: tuple[str, str] | None = None
    header: str | None = None
    prefix: str = ""
    encoding: Literal["hex", "base64"] = "hex"
    query_param: str | None = None
    tolerance: timedelta = DEFAULT_TOLERANCE

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": self.type}
        if self.secret_env:
            spec["secretEnv"] = self.secret_env
        if self.secret_ref:
            spec["secretRef"] = {"name": self.secret_ref[0], "key": self.secret_ref[1]}
        if self.type == "hmac":
            spec.update(header=self.header, prefix=self.prefix, encoding=self.encoding)
        if self.type == "token":
            spec.update(
                {"header": self.header} if self.header else {"queryParam": self.query_param}
            )
        if self.type == "stripe":
            spec["tolerance"] = format_duration(self.tolerance)
        return spec


def hmac_sha256(
    *,
    header: str,
    prefix: str = "",
    encoding: Literal["hex", "base64"] = "hex",
    secret_env: str | None = None,
    secret_ref: tuple[str, str] | None = None,
) -> Verification:
    """HMAC-SHA256 of the raw body, in ``header`` as ``prefix`` + hex (or base64) digest."""
    return _checked("hmac", secret_env, secret_ref, header=header, prefix=prefix, encoding=encoding)


def github(
    *, secret_env: str | None = None, secret_ref: tuple[str, str] | None = None
) -> Verification:
    """GitHub's ``X-Hub-Signature-256: sha256=<hex HMAC of the body>``."""
    return _checked("github", secret_env, secret_ref)


def stripe(
    *,
    secret_env: str | None = None,
    secret_ref: tuple[str, str] | None = None,
    tolerance: Duration = DEFAULT_TOLERANCE,
) -> Verification:
    """Stripe's ``Stripe-Signature: t=<unix time>,v1=<hex HMAC of "t.body">``; a timestamp
    further than ``tolerance`` from now is refused as a replay."""
    try:
        window = parse_duration(tolerance, what="tolerance")
    except ValueError as exc:
        raise InvalidWebhookError(str(exc)) from None
    return _checked("stripe", secret_env, secret_ref, tolerance=window)


def token(
    *,
    header: str | None = None,
    query_param: str | None = None,
    secret_env: str | None = None,
    secret_ref: tuple[str, str] | None = None,
) -> Verification:
    """A shared token, sent verbatim in ``header`` or in the URL's ``query_param``."""
    return _checked("token", secret_env, secret_ref, header=header, query_param=query_param)


def none() -> Verification:
    """No verification: anyone who knows the URL can send events. Use only behind another
    check (a private network, a proxy that verifies)."""
    return Verification(type="none")


def _checked(
    scheme: Scheme, env: str | None, ref: tuple[str, str] | None, **options: Any
) -> Verification:
    spec = Verification(scheme, env, ref, **options).to_spec()
    return parse_verification(spec)


@dataclass(frozen=True)
class WebhookSpec:
    """A validated webhook: what the gateway needs to receive, verify and transform."""

    name: str
    transform: Expression
    verification: Verification
    content_types: tuple[str, ...] = DEFAULT_CONTENT_TYPES
    max_body_bytes: int = DEFAULT_MAX_BODY

    def to_spec(self) -> dict[str, Any]:
        """The ``Webhook`` CR's ``spec`` (the name is the resource's own)."""
        return {
            "transform": self.transform.source,
            "verification": self.verification.to_spec(),
            "contentTypes": list(self.content_types),
            "maxBodyBytes": self.max_body_bytes,
        }


def parse_webhook(name: str, spec: Any) -> WebhookSpec:
    """Validate a webhook spec (a CR's ``spec``, camelCase) and compile its transform."""
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidWebhookError(
            f"webhook name {name!r} must be lowercase letters, digits and dashes "
            "(at most 63), like 'stripe-payments': it is the last part of the URL"
        )
    if not isinstance(spec, dict):
        raise InvalidWebhookError(f"webhook {name!r}: the spec must be an object")
    where = f"webhook {name!r}"
    unknown = set(spec) - {"transform", "verification", "contentTypes", "maxBodyBytes"}
    if unknown:
        raise InvalidWebhookError(
            f"{where}: unknown field(s) {sorted(unknown)}; "
            "use transform, verification, contentTypes, maxBodyBytes"
        )
    source = spec.get("transform")
    if not isinstance(source, str):
        raise InvalidWebhookError(f"{where}: transform (a CEL expression) is required")
    try:
        transform = Expression(source, where=f"{where}: transform")
    except ValueError as exc:
        message = str(exc).replace('write it like "event.data.amount > 100"', EXAMPLE)
        raise InvalidWebhookError(message) from None
    if "verification" not in spec:
        raise InvalidWebhookError(
            f"{where}: verification is required; use type 'none' to accept unsigned deliveries"
        )
    try:
        verification = parse_verification(spec["verification"])
    except InvalidWebhookError as exc:
        raise InvalidWebhookError(f"{where}: {exc}") from None
    types = spec.get("contentTypes", list(DEFAULT_CONTENT_TYPES))
    if (
        not isinstance(types, list)
        or not types
        or not all(t in DEFAULT_CONTENT_TYPES for t in types)
    ):
        raise InvalidWebhookError(
            f"{where}: contentTypes must be a non-empty list of {JSON!r} and/or {FORM!r}"
        )
    size = spec.get("maxBodyBytes", DEFAULT_MAX_BODY)
    if not isinstance(size, int) or isinstance(size, bool) or not 1024 <= size <= MAX_BODY_LIMIT:
        raise InvalidWebhookError(
            f"{where}: maxBodyBytes must be a whole number from 1024 to {MAX_BODY_LIMIT}"
        )
    return WebhookSpec(name, transform, verification, tuple(dict.fromkeys(types)), size)


def parse_verification(spec: Any) -> Verification:
    if not isinstance(spec, dict):
        raise InvalidWebhookError("verification must be an object with a 'type'")
    scheme = spec.get("type")
    if scheme not in SCHEMES:
        raise InvalidWebhookError(
            f"verification type {scheme!r} is not one of {', '.join(SCHEMES)}"
        )
    allowed = {"type", "secretEnv", "secretRef"} | {
        "hmac": {"header", "prefix", "encoding"},
        "token": {"header", "queryParam"},
        "stripe": {"tolerance"},
    }.get(scheme, set())
    if scheme == "none":
        allowed = {"type"}
    unknown = set(spec) - allowed
    if unknown:
        raise InvalidWebhookError(
            f"verification {scheme!r} takes no {', '.join(sorted(unknown))} "
            f"(it takes {', '.join(sorted(allowed))})"
        )
    env, ref = spec.get("secretEnv"), spec.get("secretRef")
    if scheme != "none" and (env is None) == (ref is None):
        raise InvalidWebhookError(
            f"verification {scheme!r} needs exactly one of secretEnv (an environment variable "
            "of the gateway) or secretRef (a Secret mounted into the gateway)"
        )
    if env is not None and (not isinstance(env, str) or not ENV_NAME.match(env)):
        raise InvalidWebhookError(f"secretEnv {env!r} is not an environment variable name")
    secret_ref = None
    if ref is not None:
        if (
            not isinstance(ref, dict)
            or set(ref) != {"name", "key"}
            or not SECRET_NAME.match(str(ref["name"]))
            or not SECRET_KEY.match(str(ref["key"]))
        ):
            raise InvalidWebhookError(
                "secretRef must be {name: <Secret name>, key: <key in it>}, both valid "
                "Kubernetes names"
            )
        secret_ref = (str(ref["name"]), str(ref["key"]))
    header = spec.get("header")
    if header is not None and (not isinstance(header, str) or not HEADER.match(header)):
        raise InvalidWebhookError(f"header {header!r} is not an HTTP header name")
    options: dict[str, Any] = {}
    if scheme == "hmac":
        if header is None:
            raise InvalidWebhookError("verification 'hmac' needs the header the signature is in")
        prefix = spec.get("prefix", "")
        encoding = spec.get("encoding", "hex")
        if not isinstance(prefix, str) or len(prefix) > 100:
            raise InvalidWebhookError("prefix must be a string (like 'sha256=')")
        if encoding not in ("hex", "base64"):
            raise InvalidWebhookError(f"encoding {encoding!r} must be 'hex' or 'base64'")
        options = {"header": header, "prefix": prefix, "encoding": encoding}
    elif scheme == "token":
        param = spec.get("queryParam")
        if (header is None) == (param is None):
            raise InvalidWebhookError(
                "verification 'token' needs exactly one of header or queryParam"
            )
        if param is not None and (not isinstance(param, str) or not HEADER.match(param)):
            raise InvalidWebhookError(f"queryParam {param!r} must be letters, digits, dashes")
        options = {"header": header, "query_param": param}
    elif scheme == "stripe":
        try:
            options["tolerance"] = parse_duration(spec.get("tolerance", "5m"), what="tolerance")
        except ValueError as exc:
            raise InvalidWebhookError(str(exc)) from None
        if not timedelta(seconds=1) <= options["tolerance"] <= timedelta(hours=24):
            raise InvalidWebhookError("tolerance must be between 1s and 24h")
    return Verification(scheme, env, secret_ref, **options)
