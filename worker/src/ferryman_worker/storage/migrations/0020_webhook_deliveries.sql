-- Webhook deliveries that passed verification, kept for debugging and re-running after a
-- transform is fixed. Rejected deliveries (bad signature) are never stored: only counted.
CREATE TABLE webhook_deliveries (
    id            text PRIMARY KEY,
    webhook       text NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    content_type  text NOT NULL,
    headers       jsonb NOT NULL,                  -- secret-bearing headers redacted
    query         jsonb NOT NULL,                  -- secret-bearing parameters redacted
    body          bytea NOT NULL,                  -- exactly as received
    verification  text NOT NULL,                   -- the scheme that passed ('none' too)
    status        text NOT NULL CHECK (status IN ('ACCEPTED', 'TRANSFORM_FAILED')),
    output        jsonb,                           -- the events the transform made
    event_ids     text[] NOT NULL DEFAULT '{}',
    error         text,                            -- why the transform failed
    reruns        integer NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook, id DESC);
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at);
