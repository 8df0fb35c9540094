"""Start the operator: check the settings, then run kopf with peering and a liveness endpoint.

python -m ferryman_operator        (the operator image's entry point)
"""

from __future__ import annotations

import logging
import random
from typing import Any

import kopf

from ferryman_operator import (
    handlers_functions,
    handlers_pools,
    handlers_webhooks,
    kube,
    metrics,
    natsconn,
)
from ferryman_operator.settings import OperatorSettings, load_settings

FINALIZER = "ferryman.dev/jetstream-cleanup"


def build_registry(settings: OperatorSettings) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, memo: Any, logger: Any, **_: Any) -> None:
        settings.persistence.finalizer = FINALIZER
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
            prefix="ferryman.dev"
        )
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix="ferryman.dev", key="last-handled-configuration"
        )
        settings.scanning.disabled = True  # no CRD list/watch rights needed
        settings.posting.reporting_component = "ferryman-operator"
        settings.posting.level = logging.INFO
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        try:
            memo.nc, memo.js = await natsconn.connect(
                memo.settings.nats_servers, memo.settings.stream_replicas
            )
        except natsconn.NatsUnavailable as error:
            raise kopf.TemporaryError(str(error), delay=5) from error
        memo.api = await kube.api_client()
        logger.info("connected to NATS at %s", memo.settings.nats_url)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # In a pod: its ServiceAccount token; elsewhere: KUBECONFIG (as kubectl does).
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: Any, **_: Any) -> None:
        if getattr(memo, "nc", None) is not None:
            await memo.nc.close()
        if getattr(memo, "api", None) is not None:
            await memo.api.close()

    handlers_functions.register(registry, settings)
    handlers_pools.register(registry, settings)
    handlers_webhooks.register(registry, settings)
    return registry


def main() -> None:
    settings = load_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    liveness = (
        f"http://{settings.liveness_host}:{settings.liveness_port}/healthz"
        if settings.liveness_port
        else None
    )
    namespaces = settings.namespaces
    metrics.serve(settings.metrics_port, settings.metrics_host)
    kopf.run(
        registry=build_registry(settings),
        memo=kopf.Memo(settings=settings, nc=None, js=None, api=None),
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=not settings.peering,
        peering_name=settings.peering or None,
        # Equal priorities freeze all peers: without one, each replica draws its own.
        priority=settings.priority if settings.priority is not None else random.randint(1, 2**30),
        liveness_endpoint=liveness,
    )


if __name__ == "__main__":
    main()
