"""Observability: request stats, JSON logs, metrics, refusal summaries, tracing."""
