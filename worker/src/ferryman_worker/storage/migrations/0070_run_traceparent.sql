-- Traces: the W3C traceparent a run's trigger event came with (POST /e's header, or the
-- step span of the run whose fm.send made the event). The run's root span is its child,
-- in every pass, on whichever worker; NULL: the run starts a trace of its own.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS traceparent text;
