-- An event's `user` (who or what sent it) is part of its input: kept, so a run that is
-- reloaded, resumed or replayed sees the same event it started with.
ALTER TABLE events ADD COLUMN IF NOT EXISTS "user" jsonb;
