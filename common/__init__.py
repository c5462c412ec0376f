"""Leaf utilities every layer shares (clock, retry policy, rate window, statistics).

Nothing here imports any other CopyTrader package, so brokers, the domain core, the stages and
the wiring can all use it without an import arrow running back.
"""
