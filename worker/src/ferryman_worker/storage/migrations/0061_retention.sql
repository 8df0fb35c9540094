-- Retention (retaining.py) deletes finished runs oldest first: find them without a scan.
CREATE INDEX IF NOT EXISTS runs_finished_updated ON runs (updated_at)
    WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED');
-- ... and the attempts of a deleted run (step_attempts has no foreign key to cascade).
CREATE INDEX IF NOT EXISTS step_attempts_run ON step_attempts (run_id);
