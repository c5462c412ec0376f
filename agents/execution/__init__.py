"""Stage 3 — execution: order intents become broker orders, exactly once, within the copy deadline."""
