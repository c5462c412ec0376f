"""Write docs/platform-settings.md from the platforms' settings schemas (``brokers/options.py``).

Why generated: the schemas are what every door checks, so the reference a user reads must be
them, not a list kept beside them. ``--check`` exits 1 when the file differs from the schemas
(a test runs it).

    .venv/bin/python scripts/settings_doc.py           # rewrite the file
    .venv/bin/python scripts/settings_doc.py --check   # is it current?
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from msgspec import inspect as mi

from copytrader.brokers.options import OPTION_SCHEMAS, option_schema

DOC = Path(__file__).resolve().parents[1] / "docs" / "platform-settings.md"
HEADER = """# Platform settings

A session's `options` in the config file (`sessions[].options`), or an account's settings and
secret settings on the dashboard, are checked by their platform's schema
(`brokers/<platform>/options.py`) at every door: a name not listed here is refused, and so is a
value outside its range, naming the setting. Numbers may be given as text (`"10"`), booleans as
`true`/`false` in either form. In the config file, `<name>_env: VARIABLE` reads a setting from
the environment (for secrets such as Tradovate's `sec`). Each bound's reason is beside it in the
schema's source.

Generated from the schemas by `scripts/settings_doc.py`; a test fails when it is out of date.
"""


def _n(value: float) -> str:
    """A bound as a reader writes it: 4,294,967,295, not 4.29497e+09."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def describe(kind: mi.Type) -> str:
    """A field's type with its bounds, in a reader's words."""
    if isinstance(kind, mi.UnionType):
        parts = [describe(t) for t in kind.types if not isinstance(t, mi.NoneType)]
        nullable = any(isinstance(t, mi.NoneType) for t in kind.types)
        return " or ".join(parts) + (" (or unset)" if nullable else "")
    if isinstance(kind, mi.BoolType):
        return "true/false"
    if isinstance(kind, mi.IntType | mi.FloatType):
        name = "integer" if isinstance(kind, mi.IntType) else "number"
        low = f"≥ {_n(kind.ge)}" if kind.ge is not None else f"> {_n(kind.gt)}" if kind.gt is not None else ""
        high = f"≤ {_n(kind.le)}" if kind.le is not None else f"< {_n(kind.lt)}" if kind.lt is not None else ""
        bounds = ", ".join(b for b in (low, high) if b)
        return f"{name} {bounds}".strip()
    if isinstance(kind, mi.StrType):
        if kind.pattern is not None:
            return f"text matching `{kind.pattern}`"
        longest = f" of at most {kind.max_length} characters" if kind.max_length is not None else ""
        return f"text{longest}"
    if isinstance(kind, mi.LiteralType):
        return "one of " + ", ".join(f"`{v}`" for v in kind.values)
    if isinstance(kind, mi.DecimalType):
        return "decimal number"
    if isinstance(kind, mi.TupleType):
        return "[" + ", ".join(describe(t) for t in kind.item_types) + "]"
    if isinstance(kind, mi.ListType):
        longest = f", at most {kind.max_length}" if kind.max_length is not None else ""
        return f"list of ({describe(kind.item_type)}){longest}"
    if isinstance(kind, mi.DictType):
        longest = f", at most {kind.max_length}" if kind.max_length is not None else ""
        return f"map of {describe(kind.key_type)} → {describe(kind.value_type)}{longest}"
    return type(kind).__name__.removesuffix("Type").lower()


def default_of(field: mi.Field) -> str:
    if field.default_factory is not msgspec.NODEFAULT:
        value: Any = field.default_factory()
    else:
        value = field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return f'`"{value}"`' if value else '`""`'
    return f"`{msgspec.json.encode(value).decode()}`"


def render() -> str:
    out = [HEADER]
    for platform in sorted(OPTION_SCHEMAS):
        info = mi.type_info(option_schema(platform))
        assert isinstance(info, mi.StructType)
        out.append(f"\n## {platform}\n\n| setting | value | default |\n|---|---|---|\n")
        out.extend(f"| `{f.name}` | {describe(f.type)} | {default_of(f)} |\n" for f in info.fields)
    return "".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is not current")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = DOC.read_text() if DOC.exists() else ""
        if current != text:
            print(f"{DOC} is out of date: run scripts/settings_doc.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
