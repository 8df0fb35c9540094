-- The runs list answers any filter from an index, newest first, with keyset pagination on
-- (created_at, id): by function, by status, by both, with or without a time range.
-- (runs_created already serves the unfiltered list; runs_event the event filter.)
DROP INDEX IF EXISTS runs_function_created;
CREATE INDEX runs_function_created_id ON runs (function_id, created_at DESC, id DESC);
CREATE INDEX runs_status_created ON runs (status, created_at DESC, id DESC);
CREATE INDEX runs_function_status_created ON runs (function_id, status, created_at DESC, id DESC);
-- A run's replays, so the console links an original to the runs replayed from it.
CREATE INDEX runs_replay_of ON runs (replay_of) WHERE replay_of IS NOT NULL;
