"""The settings of every platform's sessions go through one schema per platform (``brokers/<platform>/options.py``): a misspelt name is refused instead of ignored, a
number that would spin or stall a session is refused naming its field, the dashboard's text
numbers still read, and the adapters' configs read the same schema the doors check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from copytrader.brokers.base import SessionConfig
from copytrader.brokers.dtc.config import DtcConfig
from copytrader.brokers.dxlink.adapter import DxLinkAdapter
from copytrader.brokers.fix.config import FixConfig
from copytrader.brokers.ninjatrader.config import NtConfig
from copytrader.brokers.options import check_options
from copytrader.brokers.projectx.config import ProjectXConfig
from copytrader.brokers.rithmic.adapter import RithmicAdapter
from copytrader.brokers.tradovate.config import TradovateConfig
from copytrader.core.schemas import SchemaError


@dataclass(frozen=True)
class Platform:
    name: str
    defaults: dict[str, Any]  # what the adapter used before the schema, when a setting is absent
    typo: str  # a misspelling of a setting the adapter reads
    timeout: str
    backoff: str  # the first delay of the reconnect backoff (FIX: its only one)
    backoff_max: str | None  # None: no min/max pair
    build: Callable[[dict[str, Any]], object]  # the adapter's config from a session's options


def _rithmic(options: dict[str, Any]) -> RithmicAdapter:
    return RithmicAdapter(SessionConfig("rithmic", "r", {"A": "ACC"}, "ws://127.0.0.1:1", "u", "p", options))


def _dtc(options: dict[str, Any]) -> DtcConfig:
    return DtcConfig.from_session(SessionConfig("dtc", "d", {"A": "ACC"}, "dtc://127.0.0.1:1", "u", "p", options))


def _dxlink(options: dict[str, Any]) -> DxLinkAdapter:
    return DxLinkAdapter(SessionConfig("dxlink", "x", {}, "ws://127.0.0.1:1", secret="t", options=options))


def _ninjatrader(options: dict[str, Any]) -> NtConfig:
    return NtConfig.from_session(
        SessionConfig("ninjatrader", "n", {"A": "Sim101"}, "ati://127.0.0.1:1", options=options)
    )


def _fix(options: dict[str, Any]) -> FixConfig:
    ids = {"sender_comp_id": "ME", "target_comp_id": "THEM", "store_dir": "/tmp/unused-fix-store"}
    return FixConfig.from_session(
        SessionConfig("fix", "f", {"A": "ACC"}, "fix://127.0.0.1:1", options={**ids, **options})
    )


def _tradovate(options: dict[str, Any]) -> TradovateConfig:
    return TradovateConfig.from_session(SessionConfig("tradovate", "t", {"A": "ACC"}, None, "u", "p", options))


def _projectx(options: dict[str, Any]) -> ProjectXConfig:
    return ProjectXConfig.from_session(
        SessionConfig("projectx", "x", {"A": "ACC"}, "http://127.0.0.1:1", "u", "p", options)
    )


PLATFORMS = [
    Platform(
        "rithmic",
        {
            "system_name": "",
            "app_name": "copytrader",
            "app_version": "1.0",
            "timeout_s": 10.0,
            "reconnect_min_s": 1.0,
            "reconnect_max_s": 30.0,
            "reject_attempts": 4,
            "ack_wait_s": 2.0,
            "exchanges": {},
        },
        "timout_s",
        "timeout_s",
        "reconnect_min_s",
        "reconnect_max_s",
        _rithmic,
    ),
    Platform(
        "dtc",
        {
            "encoding": "binary",
            "trade_mode": "live",
            "heartbeat_s": 10,
            "client_name": "CopyTrader",
            "handshake_timeout_s": 30.0,
            "heartbeat_time_scale": 1.0,
            "request_timeout_s": 10.0,
            "reconnect_min_s": 0.5,
            "reconnect_max_s": 30.0,
            "fill_history_days": 1,
        },
        "heartbeat_sec",
        "request_timeout_s",
        "reconnect_min_s",
        "reconnect_max_s",
        _dtc,
    ),
    Platform(
        "dxlink",
        {
            "symbols": [],
            "data_format": "COMPACT",
            "connect_timeout_s": 10.0,
            "reconnect_min_s": 0.2,
            "reconnect_max_s": 10.0,
        },
        "symbol",
        "connect_timeout_s",
        "reconnect_min_s",
        "reconnect_max_s",
        _dxlink,
    ),
    Platform(
        "ninjatrader",
        {
            "exchange_name": "Globex",
            "request_timeout_s": 10.0,
            "lookup_settle_s": 0.5,
            "poll_s": 0.02,
            "reconnect_min_s": 0.5,
            "reconnect_max_s": 10.0,
            "connect_timeout_s": 10.0,
            "incoming": None,
            "outgoing": None,
            "balance": Decimal(0),
        },
        "poll_ms",
        "request_timeout_s",
        "reconnect_min_s",
        "reconnect_max_s",
        _ninjatrader,
    ),
    Platform(
        "fix",
        {
            "fix_version": None,
            "begin_string": None,
            "heartbeat_s": 30,
            "store_dir": None,
            "store_namespace": "",
            "reset_on_logon": False,
            "persist_messages": False,
            "order_status_requests": True,
            "request_timeout_s": 10.0,
            "logon_timeout_s": 10.0,
            "reconnect_s": 1,
        },
        "heartbeat_sec",
        "logon_timeout_s",
        "reconnect_s",
        None,
        _fix,
    ),
    Platform(
        "tradovate",
        {"live": False, "cid": 0, "heartbeat_s": 2.5, "request_timeout_s": 10.0, "max_attempts": 4},
        "heartbeat_sec",
        "request_timeout_s",
        "reconnect_initial_s",
        "reconnect_max_s",
        _tradovate,
    ),
    Platform(
        "projectx",
        {"negotiate": False, "request_timeout_s": 10.0, "rate_limit": (200, 60.0), "keepalive_s": 15.0},
        "keep_alive_s",
        "request_timeout_s",
        "reconnect_min_s",
        "reconnect_max_s",
        _projectx,
    ),
]
BY_NAME = {p.name: p for p in PLATFORMS}
ALL = pytest.mark.parametrize("platform", PLATFORMS, ids=lambda p: p.name)
BACKOFF_PAIRS = [p for p in PLATFORMS if p.backoff_max is not None]
# 0 spins or fails every call, a negative delay is nonsense, NaN and infinity pass a ``> 0``
# check and then stall, True is not a number of seconds, and "abc" is not a number at all.
BAD_NUMBERS = [0, -1, float("nan"), float("inf"), float("1e999"), True, "abc"]


def refusal(platform: str, options: dict[str, Any]) -> SchemaError:
    with pytest.raises(SchemaError) as caught:
        check_options(platform, options)
    return caught.value


@ALL
def test_no_settings_read_as_the_defaults_the_adapter_always_had(platform: Platform) -> None:
    settings = check_options(platform.name, {})
    assert {name: getattr(settings, name) for name in platform.defaults} == platform.defaults
    platform.build({})  # and the adapter's config builds from them


@ALL
def test_a_misspelt_setting_is_refused_by_name(platform: Platform) -> None:
    error = refusal(platform.name, {platform.typo: 5})
    assert error.field == platform.typo
    with pytest.raises(ValueError, match=f"options.{platform.typo}"):
        platform.build({platform.typo: 5})


@ALL
@pytest.mark.parametrize("value", BAD_NUMBERS, ids=repr)
def test_a_timeout_that_would_spin_or_stall_is_refused_by_name(platform: Platform, value: object) -> None:
    assert refusal(platform.name, {platform.timeout: value}).field == platform.timeout
    with pytest.raises(ValueError, match=f"options.{platform.timeout}"):
        platform.build({platform.timeout: value})


@ALL
@pytest.mark.parametrize("value", BAD_NUMBERS, ids=repr)
def test_a_reconnect_delay_that_would_spin_or_stall_is_refused_by_name(platform: Platform, value: object) -> None:
    assert refusal(platform.name, {platform.backoff: value}).field == platform.backoff


@pytest.mark.parametrize("platform", BACKOFF_PAIRS, ids=lambda p: p.name)
def test_a_backoff_whose_first_delay_exceeds_its_last_is_refused_naming_the_last(platform: Platform) -> None:
    assert platform.backoff_max is not None
    error = refusal(platform.name, {platform.backoff: 5, platform.backoff_max: 1})
    assert error.field == platform.backoff_max
    settings = check_options(platform.name, {platform.backoff: 1, platform.backoff_max: 1})
    assert getattr(settings, platform.backoff_max) == 1  # equal is a constant delay, and fine


@ALL
def test_numbers_given_as_text_read_as_numbers(platform: Platform) -> None:
    """The dashboard's secret form sends text: "10" is 10."""
    settings = check_options(platform.name, {platform.timeout: "10", platform.backoff: "2"})
    assert getattr(settings, platform.timeout) == 10.0
    assert getattr(settings, platform.backoff) == 2


def test_dtc_names_its_encoding_and_trade_mode_in_any_case_and_refuses_others() -> None:
    config = _dtc({"encoding": "JSON", "trade_mode": "Sim"})
    assert (config.endpoint.encoding.name, config.endpoint.trade_mode.name) == ("JSON", "SIMULATED")
    assert refusal("dtc", {"trade_mode": "paper"}).field == "trade_mode"
    assert refusal("dtc", {"encoding": "xml"}).field == "encoding"


def test_fix_takes_its_version_as_yaml_numbers_and_its_flags_as_text() -> None:
    config = _fix({"fix_version": 4.2, "persist_messages": "false", "order_status_requests": "false"})
    assert (config.begin_string, config.persist_messages, config.order_status) == ("FIX.4.2", False, False)
    assert refusal("fix", {"persist_messages": "no"}).field == "persist_messages"  # never read as true
    assert refusal("fix", {"heartbeat_s": 3601}).field == "heartbeat_s"


def test_ninjatrader_balance_is_a_bounded_decimal_given_as_a_number_or_text() -> None:
    assert _ninjatrader({"balance": "50000.25"}).balance == Decimal("50000.25")
    for bad in ("NaN", "Infinity", -1, "1e13", True, "abc"):
        assert refusal("ninjatrader", {"balance": bad}).field == "balance"
    assert _ninjatrader({"lookup_settle_s": 0}).lookup_settle_s == 0  # lookup may answer at once


def test_rithmic_exchanges_map_short_roots_to_short_names() -> None:
    adapter = _rithmic({"exchanges": {"ZN": "CBOT"}})
    assert adapter.exchanges["ZN"] == "CBOT" and adapter.exchanges["ES"] == "CME"
    assert refusal("rithmic", {"exchanges": {"E S": "CME"}}).field == "exchanges"
    assert refusal("rithmic", {"exchanges": {"ES": "x" * 17}}).field == "exchanges"
    assert refusal("rithmic", {"exchanges": "CME"}).field == "exchanges"


def test_dxlink_symbols_are_a_list_of_feed_symbols() -> None:
    adapter = _dxlink({"symbols": ["/ESZ26:XCME"], "data_format": "FULL"})
    assert adapter.symbols == ("/ESZ26:XCME",) and adapter.data_format == "FULL"
    assert refusal("dxlink", {"symbols": "/ESZ26:XCME"}).field == "symbols"  # not one letter each
    assert refusal("dxlink", {"symbols": ["bad symbol"]}).field == "symbols[0]"
    assert refusal("dxlink", {"data_format": "compact"}).field == "data_format"
