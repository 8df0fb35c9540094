"""``ferryman dev``: embedded PostgreSQL and NATS, the supervisor, the lock."""
