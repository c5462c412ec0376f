"""Bounds every door applies, named once, each with the reason it is what it is.

A value inside these bounds can no longer crash or stall a stage: the worst arithmetic the
copy path does with them (``leader quantity × follower size ÷ leader size × multiplier``) stays
a few dozen digits, far from the million-digit integers a size of ``1e999999`` produced, and no
price can be ``Infinity`` or ``NaN`` by the time a broker or the tracker sees it.
"""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlsplit

# A futures order for more contracts than this is a typo or an attack: exchanges cap one order
# far lower (thousands of contracts for the most liquid index futures).
MAX_QUANTITY = 10_000
# A follower trading a hundred times its leader is already an extreme rule; above that a
# mistyped multiplier (1000 for 1.000) would place orders no account can carry.
MAX_MULTIPLIER = Decimal(100)
# Account sizes are in the account currency: a trillion is more than any trading account,
# and keeps ``size ÷ size`` ratios within Decimal's default 28-digit precision.
MAX_ACCOUNT_SIZE = Decimal(10) ** 12
# Futures prices are at most in the hundreds of thousands; a billion leaves room for any
# instrument quoted in small units and refuses 1e308-style values.
MAX_PRICE = Decimal(10) ** 9
# Significant digits a decimal may carry: prices and sizes need a dozen or so; a
# 60,000-digit number costs real CPU in every operation it meets.
MAX_DECIMAL_DIGITS = 24
# Exchange symbols (ESZ6, MESZ6, 6EH7, NQ.Z6) are short; 32 covers every platform's form.
MAX_SYMBOL_LEN = 32
SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"
# Account, session, group and platform ids are names a person types; 64 is the web's limit.
MAX_ID_LEN = 64
# Signal ids are derived (``leader:order:kind:version``) from two ids and a version.
MAX_SIGNAL_ID_LEN = 256
# Free text on records (source, leader order id, who did it, command ids).
MAX_TEXT_LEN = 256
# Broker passwords and API keys; long JWT-style secrets fit, a megabyte does not.
MAX_SECRET_LEN = 4096
# Endpoint URLs: a host, a port and a short path.
MAX_URL_LEN = 300
#: ``dtc``/``tcp``/``fix``/``ati``: a plain TCP socket (Sierra Chart's DTC server, a FIX
#: acceptor, NinjaTrader's ATI port), not a web URL.
URL_SCHEMES = ("http", "https", "ws", "wss", "dtc", "tcp", "fix", "ati")
#: ``oif:///C:/Users/me/Documents/NinjaTrader 8``: NinjaTrader's order-instruction-file folder
#: on this machine (no host: the files are local, and no login ever goes there).
FOLDER_SCHEMES = ("oif",)
# Stage stamps: one per stage (ARCHITECTURE.md lists eight); 16 leaves room to grow.
MAX_STAMPS = 16
MAX_STAMP_NAME_LEN = 32
# Stamps are ``time.time()`` seconds: 1e11 is the year 5138, so anything larger is not a time.
MAX_STAMP_S = 1e11
# Platform settings (appId, cid, ...): a handful per platform; numeric ones stay small.
MAX_OPTIONS = 32
OPTION_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,40}$"
MAX_OPTION_NUMBER = 1e15
MAX_OPTION_TEXT_LEN = 1024
# List-valued settings in the config file (rate limit windows): a few pairs.
MAX_OPTION_LIST = 16
MAX_OPTION_MAP = 256  # a name → value map in the config file (Rithmic's exchanges: one per product root)
# Symbol maps translate roots (ES → MES); a few dozen is plenty.
MAX_SYMBOL_MAP = 64
# Sizes of a configuration file's lists: far above any real installation, far below a
# file that could exhaust memory.
MAX_CONFIG_ITEMS = 10_000
# Nesting: no schema here takes free-form nested values, so a body nested deeper than its
# schema is refused at the first unexpected level. Decoders that must skip unknown fields
# (Kafka records, forward compatible) refuse anything deeper than this while skipping.
MAX_NESTING = 32

# A position sums many fills, so it may hold more than one order's MAX_QUANTITY (and a flatten
# closes it with one order, whose execution carries that many); a million contracts is far
# above any exchange's position limit (tens of thousands) and far below the database's 32-bit
# integer column.
MAX_POSITION_QUANTITY = 1_000_000
# Fills counted into one position: the database column is a 32-bit integer (a fill a second
# for 68 years).
MAX_POSITION_FILLS = 2**31 - 1
# Realised P&L in the account currency, either sign: a hundred billion is more than any
# account wins or loses, and below the 10^12 that the database's Numeric(18, 6) cannot hold;
# only a broken or hostile price gets near it.
MAX_REALIZED_PNL = Decimal(10) ** 11
# The recent fill ids a position keeps to ignore a fill reported twice (tables/positions.py
# keeps 256).
MAX_RECENT_FILL_IDS = 256
# Execution ids join an account (64), a broker's order id (128), a kind and a broker's fill id.
MAX_EXECUTION_ID_LEN = 512
# A broker's own order id: the longest seen are UUIDs and FIX OrderIDs; the database holds 128.
MAX_BROKER_ORDER_ID_LEN = 128
# Stamps on a record after the signal: the signal's own (MAX_STAMPS) plus one per later stage
# (eight in ARCHITECTURE.md), with room.
MAX_RECORD_STAMPS = 32
# A reason is prose for people (a broker's message with some context): longer is cut, not
# refused, so an over-long broker message never costs the record that carries it.
MAX_REASON_LEN = 4000


class BoundError(ValueError):
    """A value outside its bound; the message is the reason shown to the sender."""


def check_decimal(value: Decimal | None, *, maximum: Decimal, what: str = "number") -> None:
    """Finite, positive, at most ``maximum`` and at most MAX_DECIMAL_DIGITS digits."""
    if value is None:
        return
    if not value.is_finite():
        raise BoundError(f"must be a finite {what}, got {value}")
    if len(value.as_tuple().digits) > MAX_DECIMAL_DIGITS:
        raise BoundError(f"at most {MAX_DECIMAL_DIGITS} significant digits")
    if not 0 < value <= maximum:
        raise BoundError(f"must be positive and at most {maximum}, got {value:.6g}")


def _check_folder(url: str, host: str | None, path: str, extra: str) -> str:
    """A local folder route: an absolute path, no host, nothing after it, no parent steps."""
    if host:
        raise BoundError("a folder endpoint names no host: oif:///absolute/path")
    if not path.startswith("/") or len(path) < 2:
        raise BoundError("a folder endpoint needs an absolute path: oif:///absolute/path")
    if extra:
        raise BoundError("a folder endpoint takes no query or fragment")
    if ".." in path.split("/"):
        raise BoundError("a folder endpoint must not step up with '..'")
    return url


def check_endpoint(url: str, allowed_hosts: frozenset[str] = frozenset(), *, folders: bool = True) -> str:
    """An ``http``/``https``/``ws``/``wss`` URL (or a ``dtc``/``tcp``/``fix``/``ati`` socket
    address) with a host (in ``allowed_hosts`` when given); with ``folders``, also a local
    ``oif:///path`` folder (NinjaTrader's order instruction files).

    Why: the endpoint is where an executor and the "Test" button send the account's login; a
    ``javascript:`` or ``file:`` URL has no business there, and an allow-list lets an operator
    pin logins to the platforms they use.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise BoundError("not a valid URL") from None
    if parts.scheme.lower() in FOLDER_SCHEMES:
        if not folders or allowed_hosts:
            # From the dashboard a folder would let a web user have the worker write files
            # anywhere it may: a folder route is set in the config file by the machine's owner.
            raise BoundError("a folder endpoint is set in the config file, not here")
        return _check_folder(url, host, parts.path, parts.query or parts.fragment)
    if parts.scheme.lower() not in URL_SCHEMES:
        raise BoundError(f"must be an {'/'.join(URL_SCHEMES + FOLDER_SCHEMES)} URL")
    if not host:
        raise BoundError("must name a host")
    if parts.username or parts.password:
        raise BoundError("must not carry a login (use the credentials field)")
    if allowed_hosts and host.lower() not in allowed_hosts:
        raise BoundError(f"host {host!r} is not allowed (COPYTRADER_ENDPOINT_HOSTS)")
    return url
