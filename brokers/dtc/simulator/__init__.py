"""A protocol-faithful DTC server over the shared simulator kernel (see docs/fidelity/dtc.md)."""

from .server import DtcSimulator

__all__ = ["DtcSimulator"]
