-- Credentials: event keys (ingest, POST /e/{key}) and API tokens (REST API, console, CLI).
-- Only a SHA-256 digest of each secret is stored; the secret itself is shown once, when it
-- is created. A revoked credential keeps its row (who had access, and until when), so
-- names are unique among live credentials only.

CREATE TABLE event_keys (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    digest      bytea NOT NULL UNIQUE,
    hint        text NOT NULL,           -- the secret's first characters, to tell keys apart
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE UNIQUE INDEX event_keys_live_name ON event_keys (name) WHERE revoked_at IS NULL;

CREATE TABLE api_tokens (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('read', 'operate')),
    digest      bytea NOT NULL UNIQUE,
    hint        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;
