"""The Ferryman operator: keeps JetStream in step with DurableFunctions and sizes WorkerPools.

It is a kopf operator. Each module holds one concept: ``settings`` (FERRYMAN_* environment),
``spec`` (DurableFunction spec -> JetStream topology), ``conditions``, ``scaling`` (how many
workers a backlog needs), ``deployment`` (the Deployment a WorkerPool owns), ``natsconn`` and
``kube`` (clients), and ``handlers_functions`` / ``handlers_pools`` (the kopf handlers).
"""

__all__: list[str] = []
