"""Platform name → adapter class, imported lazily so one platform's optional dependency
(quickfix, protobuf stubs, a SignalR client) never breaks the others."""

from __future__ import annotations

import importlib

from .base import BrokerAdapter, SessionConfig

ADAPTERS: dict[str, str] = {
    "paper": "copytrader.brokers.paper.adapter:PaperAdapter",
    "tradovate": "copytrader.brokers.tradovate.adapter:TradovateAdapter",
    "projectx": "copytrader.brokers.projectx.adapter:ProjectXAdapter",
    "rithmic": "copytrader.brokers.rithmic.adapter:RithmicAdapter",
    "dtc": "copytrader.brokers.dtc.adapter:DtcAdapter",
    "dxlink": "copytrader.brokers.dxlink.adapter:DxLinkAdapter",
    "ninjatrader": "copytrader.brokers.ninjatrader.adapter:NinjaTraderAdapter",
    "fix": "copytrader.brokers.fix.adapter:FixAdapter",
}

SIMULATORS: dict[str, str] = {
    "tradovate": "copytrader.brokers.tradovate.simulator:create_simulator",
    "projectx": "copytrader.brokers.projectx.simulator:create_simulator",
    "rithmic": "copytrader.brokers.rithmic.simulator:create_simulator",
    "dtc": "copytrader.brokers.dtc.simulator:create_simulator",
    "dxlink": "copytrader.brokers.dxlink.simulator:create_simulator",
    "ninjatrader": "copytrader.brokers.ninjatrader.simulator:create_simulator",
    "fix": "copytrader.brokers.fix.simulator:create_simulator",
}


def _load(path: str) -> object:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def adapter_class(platform: str) -> type[BrokerAdapter]:
    try:
        path = ADAPTERS[platform]
    except KeyError:
        raise ValueError(f"unknown platform {platform!r}; known: {', '.join(sorted(ADAPTERS))}") from None
    cls = _load(path)
    assert isinstance(cls, type) and issubclass(cls, BrokerAdapter)
    return cls


def create_adapter(config: SessionConfig) -> BrokerAdapter:
    return adapter_class(config.platform)(config)


def simulator_factory(platform: str) -> object:
    try:
        return _load(SIMULATORS[platform])
    except KeyError:
        raise ValueError(f"no simulator for platform {platform!r}; known: {', '.join(sorted(SIMULATORS))}") from None
