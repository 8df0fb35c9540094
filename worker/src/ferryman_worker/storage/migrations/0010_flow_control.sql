-- Flow control: what the admission stage needs to decide "may this run start now?".
-- Functions without flow control never touch these columns or tables.

-- Concurrency key values, one per limit ('' when the limit has no key); NULL for runs of
-- functions without concurrency limits. A run holds a slot while it holds a lease.
ALTER TABLE runs ADD COLUMN flow_keys text[];
-- A held run's place in its function's queue (priority shifts it); NULL when not queued.
ALTER TABLE runs ADD COLUMN queued_at timestamptz;
-- Throttle, debounce and batching: the run may not start before this time.
ALTER TABLE runs ADD COLUMN not_before timestamptz;
-- Why a QUEUED run is held, for people ("concurrency key acme full (2/2)").
ALTER TABLE runs ADD COLUMN reason text;
-- Singleton: one active run per function and key.
ALTER TABLE runs ADD COLUMN singleton_key text;

CREATE INDEX runs_flow_leased ON runs (function_id)
    WHERE lease_owner IS NOT NULL AND flow_keys IS NOT NULL;
CREATE INDEX runs_flow_queued ON runs (function_id, queued_at, id)
    WHERE status = 'QUEUED' AND queued_at IS NOT NULL;
CREATE INDEX runs_singleton ON runs (function_id, singleton_key)
    WHERE singleton_key IS NOT NULL AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED');

-- GCRA state (throttle, rate limit): the theoretical arrival time per function, rule, key.
CREATE TABLE flow_gcra (
    function_id  text NOT NULL,
    rule         text NOT NULL,
    key          text NOT NULL,
    tat          timestamptz NOT NULL,
    PRIMARY KEY (function_id, rule, key)
);

-- The run still gathering events per function, rule (debounce, batch) and key.
CREATE TABLE flow_pending (
    function_id  text NOT NULL,
    rule         text NOT NULL,
    key          text NOT NULL,
    run_id       text NOT NULL,
    first_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (function_id, rule, key)
);

-- Events flow control decided not to run (rate limit, singleton skip) or folded into
-- another run (debounce), with the rule that did it.
CREATE TABLE skipped_events (
    event_id     text NOT NULL,
    function_id  text NOT NULL,
    rule         text NOT NULL,
    run_id       text,
    at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, function_id)
);
