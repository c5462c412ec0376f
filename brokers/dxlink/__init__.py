"""dxFeed dxLink: WebSocket market data (quotes, trades) — no orders, no accounts."""
