"""A FIX 4.2/4.4 acceptor (QuickFIX's engine) over the shared simulator kernel (docs/fidelity/fix.md)."""

from __future__ import annotations

from typing import Any

from ...simkernel.exchange import SimExchange
from ...simkernel.logins import SimLogin
from .server import DEFAULT_ACCOUNTS, FixSimulator

__all__ = ["DEFAULT_ACCOUNTS", "FixSimulator", "cli_options", "create_simulator"]


def create_simulator(
    exchange: SimExchange | None = None, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> FixSimulator:
    """A stopped simulator; ``await sim.start()`` binds the port and fills ``base_url``."""
    return FixSimulator(exchange, host, port, **options)


def cli_options(
    options: dict[str, Any], fix_version: str | None, sender_comp_id: str | None, target_comp_id: str | None
) -> dict[str, Any]:
    """``copytrader sim fix`` flags, from the client's side: ``--sender-comp-id`` is the CompID
    the (first) client sends, ``--target-comp-id`` the simulator's own; ``--fix-version`` limits
    the sessions to one version (both are served by default)."""
    merged = dict(options)
    if fix_version:
        version = fix_version if fix_version.startswith("FIX.") else f"FIX.{fix_version}"
        if version not in ("FIX.4.2", "FIX.4.4"):
            raise ValueError(f"fix version must be FIX.4.2 or FIX.4.4, got {fix_version!r}")
        merged["fix_versions"] = (version,)
    if target_comp_id:
        merged["comp_id"] = target_comp_id
    if sender_comp_id:
        logins: list[SimLogin] = list(merged.get("logins") or [])
        if logins:
            first = logins[0]
            merged["logins"] = [SimLogin(sender_comp_id, first.secret, first.accounts), *logins[1:]]
        else:
            merged["username"] = sender_comp_id
    return merged
