"""Stage 1 — ingest: watch the leader accounts and publish what they do on ``trade.signals``."""
