"""The stages of a copy, one package each, in the order a signal travels:

``ingest`` (leader fills → ``trade.signals``) → ``fanout`` (a signal → one intent per follower,
``orders.requests``) → ``execution`` (intents → broker orders, ``trade.executions``) →
``tracking`` (positions, health, storage). ``shared`` holds what the stages share: the Kafka
outboxes and feeds, the broker session pool, the worker heartbeat and the stage context.

Stages import ``shared``, the domain core (``core``), ``brokers`` and ``common``; never each
other and never the wiring (``app``).
"""
