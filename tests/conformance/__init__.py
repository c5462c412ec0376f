"""Conformance suite: scenario files in ``cases/`` run over every adapter+simulator pair."""
