-- The durable execution core: functions, events, runs, steps, timers, cron ticks.
-- PostgreSQL is the source of truth; everything in JetStream can be rebuilt from here.

CREATE TABLE functions (
    id           text PRIMARY KEY,                 -- "{app_id}-{function id}"
    app_id       text NOT NULL,
    name         text NOT NULL,
    config       jsonb NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    data         jsonb NOT NULL,
    ts           bigint NOT NULL,                  -- ms since epoch, as sent
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_name_received ON events (name, received_at DESC);
CREATE INDEX events_received ON events (received_at DESC);

CREATE TABLE runs (
    id             text PRIMARY KEY,
    function_id    text NOT NULL,
    event_id       text,                           -- the (first) triggering event
    event_ids      text[] NOT NULL DEFAULT '{}',
    status         text NOT NULL CHECK (status IN
                     ('QUEUED','RUNNING','SLEEPING','WAITING','COMPLETED','FAILED','CANCELLED')),
    output         jsonb,
    error          jsonb,
    attempt        integer NOT NULL DEFAULT 0,     -- function-level attempt (zero-based)
    lease_owner    text,
    lease_token    bigint NOT NULL DEFAULT 0,      -- fencing token, bumped on every lease
    lease_expires  timestamptz,
    replay_of      text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    ended_at       timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runs_function_created ON runs (function_id, created_at DESC);
CREATE INDEX runs_created ON runs (created_at DESC, id DESC);
CREATE INDEX runs_event ON runs (event_id);
CREATE INDEX runs_active ON runs (updated_at) WHERE status IN ('QUEUED','RUNNING');

-- One run per (function, key) per 24 h: the key is the event id unless an idempotency
-- expression says otherwise.
CREATE TABLE run_keys (
    function_id  text NOT NULL,
    key          text NOT NULL,
    run_id       text NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (function_id, key)
);

CREATE TABLE steps (
    run_id      text NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step_id     text NOT NULL,
    name        text NOT NULL,
    position    integer NOT NULL,
    op          text NOT NULL,                     -- run sleep send_event wait invoke
    status      text NOT NULL CHECK (status IN
                  ('COMPLETED','FAILED','RETRYING','SLEEPING','WAITING')),
    output      jsonb,
    error       jsonb,
    attempts    integer NOT NULL DEFAULT 0,
    parallel    boolean NOT NULL DEFAULT false,
    wake_at     timestamptz,
    started_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,
    PRIMARY KEY (run_id, step_id)
);

-- Every failed attempt, for the console's timeline.
CREATE TABLE step_attempts (
    run_id      text NOT NULL,
    step_id     text NOT NULL,
    attempt     integer NOT NULL,
    error       jsonb NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, step_id, attempt)
);

-- Every pending timer (sleep, retry backoff), so the repair sweep can re-arm what NATS lost.
CREATE TABLE timers (
    run_id       text NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    timer_id     text NOT NULL,
    function_id  text NOT NULL,
    fire_at      timestamptz NOT NULL,
    fired_at     timestamptz,
    PRIMARY KEY (run_id, timer_id)
);
CREATE INDEX timers_pending ON timers (fire_at) WHERE fired_at IS NULL;

-- The last cron tick each function has run, so a missed tick fires once, not N times.
CREATE TABLE cron_ticks (
    function_id  text PRIMARY KEY,
    last_tick    timestamptz NOT NULL
);
