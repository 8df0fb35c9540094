-- The console's timeline: each step attempt's real start and end, and every attempt's error.
--
-- steps.started_at is the first attempt's start (kept across retries) and ended_at the
-- last attempt's end; attempt_started_at is the start of the latest attempt. Each failed
-- attempt keeps its own row in step_attempts: when it started, when it failed (``at``),
-- its error, and when the next attempt was due (the backoff), if one was scheduled.
ALTER TABLE steps ADD COLUMN attempt_started_at timestamptz;
ALTER TABLE step_attempts ADD COLUMN started_at timestamptz;
ALTER TABLE step_attempts ADD COLUMN retry_at timestamptz;
