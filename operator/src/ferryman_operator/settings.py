"""Operator settings, read from FERRYMAN_* environment variables and checked at start-up."""

from __future__ import annotations

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(SystemExit):
    """Exits the process with status 1, printing which settings are wrong."""


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FERRYMAN_", extra="ignore")

    nats_url: str = Field(
        default="nats://localhost:4222",
        description="NATS server(s) with JetStream, comma-separated (FERRYMAN_NATS_URL).",
    )
    watch_namespaces: str = Field(
        default="", description="Comma-separated namespaces to watch; empty means all namespaces."
    )
    peering: str = Field(
        default="ferryman", description="kopf peering object name; empty runs standalone (no HA)."
    )
    priority: int | None = Field(
        default=None, description="kopf peering priority; unset gives each replica a random one."
    )
    liveness_port: int = Field(default=8080, ge=0, le=65535, description="0 disables /healthz.")
    liveness_host: str = "0.0.0.0"  # a pod's probe comes from the kubelet
    metrics_port: int = Field(
        default=9090, ge=0, le=65535, description="Prometheus /metrics port; 0 disables it."
    )
    metrics_host: str = "0.0.0.0"  # scraped by Prometheus from another pod
    reconcile_interval: float = Field(
        default=30.0, gt=0, description="Seconds between drift checks."
    )
    scale_interval: float = Field(
        default=10.0, gt=0, description="Seconds between scaling decisions."
    )
    stream_replicas: int = Field(
        default=1, ge=1, le=5, description="Replicas of the JetStream streams."
    )
    worker_service_account: str = Field(
        default="",
        description="Default ServiceAccount of worker pods (the chart's worker account).",
    )
    worker_nats_url: str = Field(
        default="", description="NATS URL given to workers (default: nats_url)."
    )
    gateway_url: str = Field(
        default="",
        description="The gateway's public URL (https://...), for the URL in a Webhook's status.",
    )
    worker_env_secret: str = Field(
        default="", description="Secret (in the pool's namespace) loaded into workers with envFrom."
    )

    @field_validator("nats_url", "worker_nats_url")
    @classmethod
    def _nats_urls(cls, value: str) -> str:
        for url in filter(None, (u.strip() for u in value.split(","))):
            if not url.startswith(("nats://", "tls://", "ws://", "wss://")):
                raise ValueError(
                    f"{url!r} is not a NATS URL; write it like 'nats://nats.ferryman:4222'"
                )
        return value

    @property
    def namespaces(self) -> list[str]:
        return [n.strip() for n in self.watch_namespaces.split(",") if n.strip()]

    @property
    def nats_servers(self) -> list[str]:
        return [u.strip() for u in self.nats_url.split(",") if u.strip()]

    @property
    def workers_nats_url(self) -> str:
        return self.worker_nats_url or self.nats_url


def load_settings() -> OperatorSettings:
    """Read the settings or exit with a message that names each bad variable."""
    try:
        return OperatorSettings()
    except ValidationError as error:
        lines = ["ferryman-operator: invalid settings:"]
        for problem in error.errors():
            field = ".".join(str(p) for p in problem["loc"])
            lines.append(f"  FERRYMAN_{field.upper()}: {problem['msg']}")
        raise SettingsError("\n".join(lines)) from None
