"""The replay engine and what keeps runs moving: matcher, repair sweeps."""
