"""Webhooks in the data plane: verifying a delivery, transforming it into events, and
keeping it for debugging. The HTTP side is ``ferryman_worker.gateway.webhooks``; the
declaration (spec, CEL compile) is the SDK's ``ferryman._webhooks``; where the gateway
finds webhooks is ``ferryman_jetstream.webhooks``.
"""
