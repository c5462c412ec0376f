"""FIX session settings, read once from ``SessionConfig`` so the adapter never digs in dicts.

``endpoint`` is the counterparty's acceptor: ``fix://host:port`` (what our simulator's
``base_url`` says), ``tcp://host:port`` or plain ``host:port``. A FIX session is named by its
BeginString and both CompIDs, which the broker assigns, so they are required options.
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


def _positive(value: object, what: str) -> float:
    number = float(str(value))
    if not number > 0 or number != number or number == float("inf"):
        raise ValueError(f"fix: {what} must be a positive finite number, got {value!r}")
    return number


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
        options = session.options
        host, port = parse_endpoint(session.endpoint)
        version = str(options.get("fix_version", options.get("begin_string", "FIX.4.4"))).upper()
        if version in ("4.2", "4.4", "42", "44"):
            version = f"FIX.4.{version[-1]}"
        if version not in VERSIONS:
            raise ValueError(f"fix: fix_version must be one of {VERSIONS}, got {version!r}")
        heartbeat = int(options.get("heartbeat_s", 30))
        if not 1 <= heartbeat <= 3600:
            raise ValueError(f"fix: heartbeat_s must be 1..3600 seconds, got {heartbeat}")
        store = options.get("store_dir")
        namespace = re.sub(r"[^\w.-]", "_", str(options.get("store_namespace", "")))
        session_dir = re.sub(r"[^\w.-]", "_", session.session_id)
        store_dir = Path(str(store)) if store else default_store_root() / namespace / session_dir
        if not session.accounts:
            raise ValueError("fix: at least one account is required")
        return cls(
            host=host,
            port=port,
            begin_string=version,
            sender_comp_id=comp_id(options.get("sender_comp_id"), "sender_comp_id"),
            target_comp_id=comp_id(options.get("target_comp_id"), "target_comp_id"),
            accounts=dict(session.accounts),
            username=session.username,
            password=session.secret,
            heartbeat_s=heartbeat,
            store_dir=store_dir,
            reset_on_logon=bool(options.get("reset_on_logon", False)),
            persist_messages=bool(options.get("persist_messages", False)),
            order_status=bool(options.get("order_status_requests", True)),
            request_timeout_s=_positive(options.get("request_timeout_s", 10.0), "request_timeout_s"),
            logon_timeout_s=_positive(options.get("logon_timeout_s", 10.0), "logon_timeout_s"),
            reconnect_s=max(1, int(_positive(options.get("reconnect_s", 1), "reconnect_s"))),
        )
