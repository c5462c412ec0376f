"""The protocol-faithful dxLink market-data simulator (see server.py)."""

from .server import DEFAULT_TOKEN, DxLinkSimulator

__all__ = ["DEFAULT_TOKEN", "DxLinkSimulator"]
