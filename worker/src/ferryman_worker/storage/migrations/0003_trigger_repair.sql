-- No accepted event is lost: a function sees every event received since it was declared,
-- and the repair sweep starts the runs such events should have started and did not.

-- When the function first became known (the first worker that hosted it registered it).
ALTER TABLE functions ADD COLUMN declared_at timestamptz NOT NULL DEFAULT now();

-- How far the repair sweep has checked each function's trigger events against its runs.
CREATE TABLE trigger_scans (
    function_id    text PRIMARY KEY,
    scanned_until  timestamptz NOT NULL,
    scanned_id     text NOT NULL DEFAULT ''       -- keyset position: (received_at, id)
);
