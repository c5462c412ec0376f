"""QuickFIX SessionSettings for our initiator and the simulator's acceptor, built in code.

Built from :class:`FixConfig` rather than a .cfg file, so secrets never touch disk (they go into
the Logon in ``Bridge.toAdmin``). Settings names are QuickFIX's configuration keys.
"""

from __future__ import annotations

import sys
from pathlib import Path

import quickfix as fix

from .config import FixConfig

DICTIONARY_FILES = {"FIX.4.2": "FIX42.xml", "FIX.4.4": "FIX44.xml"}


def data_dictionary(begin_string: str) -> Path:
    """The FIX dictionary QuickFIX validates with: the wheel installs it under
    ``{sys.prefix}/share/quickfix``; a source build may keep it next to the module."""
    name = DICTIONARY_FILES[begin_string]
    module_dir = Path(fix.__file__).resolve().parent
    candidates = [
        Path(sys.prefix) / "share" / "quickfix" / name,
        module_dir / "spec" / name,
        module_dir / "quickfix" / name,
        module_dir / name,
    ]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"fix: no {name} in {', '.join(str(p.parent) for p in candidates)}")


def _yn(flag: bool) -> str:
    return "Y" if flag else "N"


def _common(dictionary: fix.Dictionary, begin_string: str, heartbeat_s: int) -> None:
    dictionary.setString("BeginString", begin_string)
    dictionary.setString("StartTime", "00:00:00")  # a 24-hour session: never reset by the clock
    dictionary.setString("EndTime", "00:00:00")
    dictionary.setString("HeartBtInt", str(heartbeat_s))
    dictionary.setString("UseDataDictionary", "Y")
    dictionary.setString("DataDictionary", str(data_dictionary(begin_string)))
    dictionary.setString("ValidateUserDefinedFields", "N")
    dictionary.setString("PersistMessages", "Y")


def initiator_settings(config: FixConfig) -> fix.SessionSettings:
    """One initiator session; its FileStore lives in ``store_dir``."""
    config.store_dir.mkdir(parents=True, exist_ok=True)
    defaults = fix.Dictionary()
    defaults.setString("ConnectionType", "initiator")
    defaults.setString("FileStorePath", str(config.store_dir / "store"))
    defaults.setString("ReconnectInterval", str(config.reconnect_s))
    defaults.setString("LogonTimeout", str(max(1, int(config.logon_timeout_s))))
    session = fix.Dictionary()
    _common(session, config.begin_string, config.heartbeat_s)
    session.setString("SenderCompID", config.sender_comp_id)
    session.setString("TargetCompID", config.target_comp_id)
    session.setString("SocketConnectHost", config.host)
    session.setString("SocketConnectPort", str(config.port))
    session.setString("ResetOnLogon", _yn(config.reset_on_logon))
    # By default no stored application messages: a ResendRequest is answered with gap fills, so
    # an order request is never re-sent as a PossDup the counterparty might execute twice. With
    # ``persist_messages`` the bridge's toApp turns such a resend into a gap fill instead.
    session.setString("PersistMessages", _yn(config.persist_messages))
    # 553/554 are 4.4 Logon fields; a 4.2 counterparty reads them as its own (documented) extension.
    session.setString("AllowUnknownMsgFields", "Y")
    settings = fix.SessionSettings()
    settings.set(defaults)
    settings.set(initiator_session_id(config), session)
    return settings


def initiator_session_id(config: FixConfig) -> fix.SessionID:
    return fix.SessionID(config.begin_string, config.sender_comp_id, config.target_comp_id)


def acceptor_settings(
    port: int, sessions: list[tuple[str, str, str]], heartbeat_s: int, *, host: str = "127.0.0.1"
) -> fix.SessionSettings:
    """The simulator's acceptor: one session per (BeginString, its CompID, the client's CompID).

    The acceptor answers with the HeartBtInt the client's Logon asks for (QuickFIX does).
    """
    defaults = fix.Dictionary()
    defaults.setString("ConnectionType", "acceptor")
    defaults.setString("SocketAcceptPort", str(port))
    defaults.setString("SocketAcceptHost", host)
    defaults.setString("SocketReuseAddress", "Y")
    settings = fix.SessionSettings()
    settings.set(defaults)
    for begin_string, ours, theirs in sessions:
        session = fix.Dictionary()
        _common(session, begin_string, heartbeat_s)
        session.setString("SenderCompID", ours)
        session.setString("TargetCompID", theirs)
        session.setString("AllowUnknownMsgFields", "Y" if begin_string == "FIX.4.2" else "N")
        settings.set(fix.SessionID(begin_string, ours, theirs), session)
    return settings
