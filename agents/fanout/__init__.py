"""Stage 2 — fan-out: one signal becomes one scaled order intent per follower (``orders.requests``)."""
