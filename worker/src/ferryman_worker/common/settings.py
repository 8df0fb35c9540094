"""Settings for the worker and gateway, from flags and ``FERRYMAN_*`` environment variables.

Validated at start-up: a bad value stops the process with a message that names the
setting and says what it should look like.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FERRYMAN_", extra="ignore")

    database_url: str = Field(
        default="", description="PostgreSQL URL, e.g. postgresql://user:pw@host:5432/ferryman"
    )
    nats_url: str = Field(default="", description="NATS URL, e.g. nats://nats:4222")
    event_key: str = Field(default="", description="key required in POST /e/{key}; empty: any")
    worker_id: str = Field(
        default="", description="this worker's name in leases (default host:pid)"
    )
    concurrency: int = Field(
        default=200, ge=1, le=10_000, description="runs one worker advances at once"
    )
    function_slot_share: float = Field(
        default=0.8,
        gt=0.0,
        le=1.0,
        description="the most of a worker's slots one function may hold while the worker "
        "hosts others (0 < share <= 1), so one slow function cannot starve the rest",
    )
    retention_days: float = Field(
        default=30.0,
        ge=0.0,
        le=36500.0,
        description="finished runs, their steps and events older than this many days are "
        "deleted (0: keep everything)",
    )
    retention_interval_seconds: float = Field(
        default=600.0, ge=0.1, le=86400.0, description="how often a retention pass runs"
    )
    lease_seconds: float = Field(
        default=30.0, ge=1.0, le=3600.0, description="how long a run lease lasts without renewal"
    )
    repair_interval_seconds: float = Field(default=15.0, ge=0.5, le=3600.0)
    max_event_bytes: int = Field(default=512 * 1024, ge=1024, le=3 * 1024 * 1024)
    manage_topology: bool = Field(
        default=True,
        description="worker creates its JetStream consumers and cron schedules itself "
        "(dev and plain installs); set false when the operator owns them",
    )
    shutdown_grace: float = Field(
        default=30.0,
        ge=0,
        description="seconds a stopping worker (SIGTERM) lets its running steps finish; the "
        "operator sets it from the pool's terminationGracePeriodSeconds",
    )
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="serve the worker's Prometheus metrics on this port (0: off)",
    )
    metrics_host: str = Field(
        default="0.0.0.0",
        description="address the worker's metrics port binds to",
    )
    # -- authentication (gateway); docs/security.md describes the model
    auth: bool = Field(
        default=True,
        description="require event keys and API tokens (ferryman dev turns it off)",
    )
    api_token: str = Field(
        default="",
        description="an API token with the operate role (the gateway accepts it, the CLI "
        "sends it); more with `ferryman tokens create`",
    )
    trusted_proxy_header: str = Field(
        default="",
        description="header naming the signed-in user, set by an SSO proxy such as "
        "oauth2-proxy (e.g. X-Forwarded-Email); empty: no proxy sign-in",
    )
    trusted_proxies: str = Field(
        default="",
        description="addresses or CIDRs (comma-separated) whose trusted_proxy_header is believed",
    )
    trust_proxy_header_from_any: bool = Field(
        default=False,
        description="believe trusted_proxy_header from any address (only when nothing but "
        "the proxy can reach the gateway, e.g. a sidecar with a NetworkPolicy)",
    )
    proxy_role: Literal["read", "operate"] = Field(
        default="read", description="role of users signed in through the proxy"
    )
    proxy_operators: str = Field(
        default="", description="proxy users (comma-separated) given the operate role"
    )
    metrics_public: bool = Field(
        default=True, description="serve /metrics without a token (false: a read token)"
    )
    ready_file: str = Field(
        default="",
        description="the worker writes its pid here once it is ready (used by ferryman dev)",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8288, ge=1, le=65535)

    @field_validator("database_url")
    @classmethod
    def _pg(cls, value: str) -> str:
        if value and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError(
                "must start with postgresql:// (e.g. postgresql://u:p@db:5432/ferryman)"
            )
        return value

    @field_validator("nats_url")
    @classmethod
    def _nats(cls, value: str) -> str:
        if value and not all(
            u.strip().startswith(("nats://", "tls://", "ws://", "wss://")) for u in value.split(",")
        ):
            raise ValueError("must start with nats:// (e.g. nats://nats:4222)")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        import ipaddress

        for part in filter(None, (p.strip() for p in value.split(","))):
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ValueError(
                    f"{part!r} is not an address or CIDR (e.g. 10.0.0.0/8,127.0.0.1)"
                ) from None
        return value

    def require(self, *names: str) -> None:
        missing = [n for n in names if not getattr(self, n)]
        if missing:
            raise SettingsError(
                "missing setting(s): "
                + ", ".join(f"FERRYMAN_{n.upper()} (or --{n.replace('_', '-')})" for n in missing)
            )


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with command-line ``overrides`` on top."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        lines = [
            f"FERRYMAN_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        ]
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
