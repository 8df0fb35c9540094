-- Waiting: wait_for_event steps, invoke steps and cancel_on entries all wait for an event.
-- The matcher resolves them; a resolution is written once (resolved_at IS NULL guard),
-- so an event and a timeout racing resolve a wait exactly once.

CREATE TABLE waits (
    id            text PRIMARY KEY,           -- "<run>/<step>" or "<run>/cancel/<n>"
    kind          text NOT NULL CHECK (kind IN ('step', 'invoke', 'cancel')),
    run_id        text NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step_id       text,
    function_id   text NOT NULL,
    event_name    text NOT NULL,
    match_path    text[],                     -- within the candidate's data; NULL: any / if
    match_value   jsonb,                      -- the trigger's value at that path
    expression    text,                       -- CEL over event (trigger) and async (candidate)
    trigger_event jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    timeout_at    timestamptz,
    resolved_at   timestamptz,
    event_id      text,                       -- what resolved it; NULL with resolved_at: timeout
    event         jsonb
);
CREATE INDEX waits_by_value ON waits (event_name, match_path, match_value)
    WHERE resolved_at IS NULL;
CREATE INDEX waits_by_run ON waits (run_id) WHERE resolved_at IS NULL;
