"""The ATI command line: 13 ``;``-separated fields, shared by the OIF files and the TCP COMMAND.

``COMMAND;ACCOUNT;INSTRUMENT;ACTION;QTY;ORDER TYPE;LIMIT PRICE;STOP PRICE;TIF;OCO ID;ORDER ID;
STRATEGY;STRATEGY ID`` (NinjaTrader 8 help guide, "Order Instruction Files" and "Commands and
Valid Parameters"; N-oif, N-cmd). Sans-I/O: the adapter encodes with it, the simulator and the
fuzz tests parse with it, so what one side writes the other reads by the same rules.

Strict on purpose: exactly 13 fields, the required fields of each command present, prices in US
decimal format (``1212.25``; ``1212,25`` is refused, as the help guide says), quantities whole
and positive, order types MARKET/LIMIT/STOPMARKET/STOPLIMIT and NinjaTrader 7's STOP, TIF
DAY/GTC. A line that breaks a rule raises :class:`CommandError` naming the rule.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

FIELD_COUNT = 13
FIELD_NAMES = (
    "COMMAND",
    "ACCOUNT",
    "INSTRUMENT",
    "ACTION",
    "QTY",
    "ORDER TYPE",
    "LIMIT PRICE",
    "STOP PRICE",
    "TIF",
    "OCO ID",
    "ORDER ID",
    "STRATEGY",
    "STRATEGY ID",
)
MAX_LINE = 1024  # far above any real line; bounds what a parser holds for one command
_US_DECIMAL = re.compile(r"^\d{1,12}(\.\d{1,10})?$")
_WHOLE = re.compile(r"^\d{1,9}$")
_INSTRUMENT = re.compile(r"^[A-Z0-9]{1,5} \d{2}-\d{2}$")
_TEXT = re.compile(r"^[\x20-\x7e]*$")  # printable ASCII: tokens travel as ASCII


class CommandError(ValueError):
    """A line NinjaTrader would not carry out, with the rule it breaks."""


class Command(str, enum.Enum):
    PLACE = "PLACE"
    CHANGE = "CHANGE"
    CANCEL = "CANCEL"
    CLOSEPOSITION = "CLOSEPOSITION"
    CANCELALLORDERS = "CANCELALLORDERS"
    FLATTENEVERYTHING = "FLATTENEVERYTHING"
    CLOSESTRATEGY = "CLOSESTRATEGY"
    REVERSEPOSITION = "REVERSEPOSITION"


class Action(str, enum.Enum):
    BUY = "BUY"
    SELL = "SELL"


class NtOrderType(str, enum.Enum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOPMARKET = "STOPMARKET"
    STOPLIMIT = "STOPLIMIT"
    STOP = "STOP"  # NinjaTrader 7's name of a stop-market order, still accepted


class Tif(str, enum.Enum):
    DAY = "DAY"
    GTC = "GTC"


NEEDS_LIMIT = frozenset({NtOrderType.LIMIT, NtOrderType.STOPLIMIT})
NEEDS_STOP = frozenset({NtOrderType.STOPMARKET, NtOrderType.STOPLIMIT, NtOrderType.STOP})


@dataclass(frozen=True, slots=True)
class AtiCommand:
    """One parsed line; empty optional fields are ``None`` (a zero price or quantity in CHANGE
    means "unchanged", so it is ``None`` too)."""

    command: Command
    account: str | None = None
    instrument: str | None = None
    action: Action | None = None
    quantity: int | None = None
    order_type: NtOrderType | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    tif: Tif | None = None
    oco_id: str | None = None
    order_id: str | None = None
    strategy: str | None = None
    strategy_id: str | None = None


def _price(name: str, text: str) -> Decimal | None:
    if text == "":
        return None
    if not _US_DECIMAL.match(text):
        raise CommandError(f"{name} {text!r} is not a US decimal number (like 1212.25)")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise CommandError(f"{name} {text!r} is not a number") from None
    return value if value != 0 else None


def _quantity(text: str) -> int | None:
    if text == "":
        return None
    if not _WHOLE.match(text):
        raise CommandError(f"QTY {text!r} is not a whole number")
    value = int(text)
    return value if value != 0 else None


def _choice(enum_type: type[enum.Enum], name: str, text: str) -> enum.Enum | None:
    if text == "":
        return None
    try:
        return enum_type(text)
    except ValueError:
        allowed = "/".join(str(m.value) for m in enum_type)
        raise CommandError(f"{name} {text!r} is not one of {allowed}") from None


def split_fields(line: str) -> list[str]:
    """The 13 fields of ``line`` (a trailing CR/LF removed), or ``CommandError``."""
    text = line.rstrip("\r\n")
    if len(text) > MAX_LINE:
        raise CommandError(f"line of {len(text)} characters; at most {MAX_LINE}")
    if not _TEXT.match(text):
        raise CommandError("line holds a character that is not printable ASCII")
    fields = text.split(";")
    if len(fields) != FIELD_COUNT:
        raise CommandError(f"expected {FIELD_COUNT} ';'-separated fields, got {len(fields)}")
    return fields


def parse(line: str) -> AtiCommand:
    """Parse one command line strictly (module docstring); ``CommandError`` says why not."""
    fields = split_fields(line)
    command = _choice(Command, "COMMAND", fields[0])
    if command is None:
        raise CommandError("COMMAND is empty")
    assert isinstance(command, Command)
    for index, value in enumerate(fields):
        if "|" in value:  # the TCP VALUE keys join with '|': an id holding one could not be asked for
            raise CommandError(f"{FIELD_NAMES[index]} holds '|'")
    account, instrument = fields[1], fields[2]
    if instrument and not _INSTRUMENT.match(instrument):
        raise CommandError(f"INSTRUMENT {instrument!r} is not a futures contract name like 'ES 12-26'")
    action = _choice(Action, "ACTION", fields[3])
    order_type = _choice(NtOrderType, "ORDER TYPE", fields[5])
    tif = _choice(Tif, "TIF", fields[8])
    parsed = AtiCommand(
        command=command,
        account=account or None,
        instrument=instrument or None,
        action=action if isinstance(action, Action) else None,
        quantity=_quantity(fields[4]),
        order_type=order_type if isinstance(order_type, NtOrderType) else None,
        limit_price=_price("LIMIT PRICE", fields[6]),
        stop_price=_price("STOP PRICE", fields[7]),
        tif=tif if isinstance(tif, Tif) else None,
        oco_id=fields[9] or None,
        order_id=fields[10] or None,
        strategy=fields[11] or None,
        strategy_id=fields[12] or None,
    )
    _check_required(parsed, fields)
    return parsed


def _check_required(cmd: AtiCommand, fields: list[str]) -> None:
    """The help guide's table of required (R) fields per command."""

    def need(*names: str) -> None:
        for name in names:
            if not fields[FIELD_NAMES.index(name)]:
                raise CommandError(f"{cmd.command.value} needs {name}")

    if cmd.command in (Command.PLACE, Command.REVERSEPOSITION):
        need("ACCOUNT", "INSTRUMENT", "ACTION", "QTY", "ORDER TYPE", "TIF")
        if cmd.quantity is None:
            raise CommandError(f"{cmd.command.value} needs a QTY above 0")
        assert cmd.order_type is not None
        if cmd.order_type in NEEDS_LIMIT and cmd.limit_price is None:
            raise CommandError(f"{cmd.order_type.value} order needs a LIMIT PRICE above 0")
        if cmd.order_type in NEEDS_STOP and cmd.stop_price is None:
            raise CommandError(f"{cmd.order_type.value} order needs a STOP PRICE above 0")
    elif cmd.command in (Command.CHANGE, Command.CANCEL):
        need("ORDER ID")
    elif cmd.command is Command.CLOSEPOSITION:
        need("ACCOUNT", "INSTRUMENT")
    elif cmd.command is Command.CLOSESTRATEGY:
        need("STRATEGY ID")


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def encode(cmd: AtiCommand) -> str:
    """The line for ``cmd`` (no line end). It is parsed back before it is returned, so nothing
    leaves the adapter that the strict parser (and so the simulator) would refuse. A CHANGE
    sends 0 for what it leaves as it is, as the help guide asks."""
    keep = 0 if cmd.command is Command.CHANGE else None
    values = (
        cmd.command,
        cmd.account,
        cmd.instrument,
        cmd.action,
        keep if cmd.quantity is None else cmd.quantity,
        cmd.order_type,
        keep if cmd.limit_price is None else cmd.limit_price,
        keep if cmd.stop_price is None else cmd.stop_price,
        cmd.tif,
        cmd.oco_id,
        cmd.order_id,
        cmd.strategy,
        cmd.strategy_id,
    )
    for name, value in zip(FIELD_NAMES, values, strict=True):
        if isinstance(value, str) and not isinstance(value, enum.Enum) and ";" in value:
            raise CommandError(f"{name} holds ';'")
    line = ";".join(_text(v) for v in values)
    parse(line)
    return line
