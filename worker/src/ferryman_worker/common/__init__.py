"""Foundations every layer uses: ids, JSON, settings, logs, metrics, input limits."""
