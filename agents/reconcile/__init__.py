"""Reconciliation: followers kept true to their leaders' broker-side state (issue #17 items 1, 2)."""
