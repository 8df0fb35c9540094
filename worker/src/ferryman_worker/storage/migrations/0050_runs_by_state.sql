-- The gateway counts unfinished runs by function and state every few seconds
-- (ferryman_runs_by_state); this index keeps that count small however many runs ended.
CREATE INDEX IF NOT EXISTS runs_unfinished_by_state ON runs (function_id, status)
    WHERE status IN ('QUEUED', 'RUNNING', 'SLEEPING', 'WAITING');
