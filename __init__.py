"""CopyTrader: copy a leader account's trades to many follower accounts through Kafka.

The repository root is the ``copytrader`` package: ``app/``, ``agents/``, ``tables/``,
``brokers/`` and ``web/`` install as ``copytrader.app``, ``copytrader.agents`` and so on, so
no generic top-level name such as ``app`` lands in another project's way.
"""

__version__ = "0.1.0"
