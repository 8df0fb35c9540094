"""The gateway: event API, REST API, health and metrics, on one port (8288 by default)."""

from ferryman_worker.gateway.app import Gateway, create_app

__all__ = ["Gateway", "create_app"]
