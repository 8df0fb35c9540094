"""Webhook verification schemes for ``Ferryman.webhook``.

::

    from ferryman import webhooks

    fm.webhook(
        name="stripe",
        transform='{"name": "stripe/" + body.type, "id": body.id, "data": body.data.object}',
        verify=webhooks.stripe(secret_env="STRIPE_WEBHOOK_SECRET"),
    )

See docs/webhooks.md.
"""

from ferryman._webhooks import (
    InvalidWebhookError,
    Verification,
    WebhookSpec,
    github,
    hmac_sha256,
    none,
    parse_webhook,
    stripe,
    token,
)

__all__ = [
    "InvalidWebhookError",
    "Verification",
    "WebhookSpec",
    "github",
    "hmac_sha256",
    "none",
    "parse_webhook",
    "stripe",
    "token",
]
