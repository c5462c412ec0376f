"""FIX session settings, read once from ``SessionConfig`` so the adapter never digs in dicts.

``endpoint`` is the counterparty's acceptor: ``fix://host:port`` (what our simulator's
``base_url`` says), ``tcp://host:port`` or plain ``host:port``. A FIX session is named by its
BeginString and both CompIDs, which the broker assigns, so they are required options (the
options and their bounds: ``options.py``).
Sequence numbers live in a QuickFIX FileStore under the data directory: a restart resumes the
session where it stopped instead of logging on at 1 (which the counterparty would refuse).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..base import SessionConfig
from ..options import read_options
from .options import FixOptions

VERSIONS = ("FIX.4.2", "FIX.4.4")
COMP_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def parse_endpoint(endpoint: str | None) -> tuple[str, int]:
    """``fix://h:p``, ``tcp://h:p`` or ``h:p`` → (host, port); FIX has no standard port."""
    if not endpoint:
        raise ValueError("fix: endpoint (the counterparty's host:port) is required")
    text = endpoint.strip()
    parts = urlsplit(text if "://" in text else f"fix://{text}")
    if parts.scheme not in ("fix", "tcp") or not parts.hostname:
        raise ValueError(f"fix: endpoint must be fix://host:port, tcp://host:port or host:port, got {endpoint!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"fix: bad port in endpoint {endpoint!r}") from None
    if not port:
        raise ValueError(f"fix: endpoint {endpoint!r} names no port (FIX has no default one)")
    return parts.hostname, port


def comp_id(value: object, what: str) -> str:
    text = str(value or "")
    if not COMP_ID.match(text):
        raise ValueError(f"fix: {what} must be 1-64 letters, digits, '_', '.', '-', got {value!r}")
    return text


def default_store_root() -> Path:
    """Where FileStores live when the session names none: the project's data directory."""
    return Path(os.environ.get("COPYTRADER_DATA_DIR", "var")).resolve() / "fix"


@dataclass(frozen=True, slots=True)
class FixConfig:
    host: str
    port: int
    begin_string: str  # FIX.4.2 or FIX.4.4
    sender_comp_id: str
    target_comp_id: str
    accounts: dict[str, str]  # our account id → FIX Account (tag 1)
    username: str | None
    password: str | None
    heartbeat_s: int = 30
    store_dir: Path = Path("var/fix")
    reset_on_logon: bool = False
    persist_messages: bool = False  # keep sent app messages in the store (resends of orders still become gap fills)
    order_status: bool = True  # the counterparty answers OrderStatusRequest (35=H)
    request_timeout_s: float = 10.0
    logon_timeout_s: float = 10.0
    reconnect_s: int = 1  # QuickFIX ReconnectInterval

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_session(cls, session: SessionConfig) -> FixConfig:
        host, port = parse_endpoint(session.endpoint)
        o = read_options(FixOptions, session.options)
        given = o.fix_version if o.fix_version is not None else o.begin_string
        version = str("FIX.4.4" if given is None else given).upper()
        if version in ("4.2", "4.4", "42", "44"):
            version = f"FIX.4.{version[-1]}"
        if version not in VERSIONS:
            raise ValueError(f"fix: fix_version must be one of {VERSIONS}, got {version!r}")
        namespace = re.sub(r"[^\w.-]", "_", o.store_namespace)
        session_dir = re.sub(r"[^\w.-]", "_", session.session_id)
        store_dir = Path(o.store_dir) if o.store_dir else default_store_root() / namespace / session_dir
        if not session.accounts:
            raise ValueError("fix: at least one account is required")
        return cls(
            host=host,
            port=port,
            begin_string=version,
            sender_comp_id=comp_id(o.sender_comp_id, "sender_comp_id"),
            target_comp_id=comp_id(o.target_comp_id, "target_comp_id"),
            accounts=dict(session.accounts),
            username=session.username,
            password=session.secret,
            heartbeat_s=o.heartbeat_s,
            store_dir=store_dir,
            reset_on_logon=o.reset_on_logon,
            persist_messages=o.persist_messages,
            order_status=o.order_status_requests,
            request_timeout_s=o.request_timeout_s,
            logon_timeout_s=o.logon_timeout_s,
            reconnect_s=o.reconnect_s,
        )
