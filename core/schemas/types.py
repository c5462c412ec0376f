"""Annotated field types shared by the schemas (strings with lengths, bounded numbers)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from ...common import bounds as b

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=b.MAX_ID_LEN)]
Text = Annotated[str, msgspec.Meta(max_length=b.MAX_TEXT_LEN)]
NonEmptyText = Annotated[str, msgspec.Meta(min_length=1, max_length=b.MAX_TEXT_LEN)]
SignalId = Annotated[str, msgspec.Meta(min_length=1, max_length=b.MAX_SIGNAL_ID_LEN)]
Symbol = Annotated[str, msgspec.Meta(min_length=1, max_length=b.MAX_SYMBOL_LEN, pattern=b.SYMBOL_PATTERN)]
SymbolRoot = Annotated[str, msgspec.Meta(min_length=1, max_length=b.MAX_SYMBOL_LEN, pattern=b.SYMBOL_PATTERN)]
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=b.MAX_URL_LEN)]
Secret = Annotated[str, msgspec.Meta(min_length=1, max_length=b.MAX_SECRET_LEN)]
Quantity = Annotated[int, msgspec.Meta(ge=0, le=b.MAX_QUANTITY)]
PositiveQuantity = Annotated[int, msgspec.Meta(ge=1, le=b.MAX_QUANTITY)]
StampName = Annotated[str, msgspec.Meta(min_length=1, max_length=b.MAX_STAMP_NAME_LEN)]
StampValue = Annotated[float, msgspec.Meta(ge=0, le=b.MAX_STAMP_S)]
Stamps = Annotated[dict[StampName, StampValue], msgspec.Meta(max_length=b.MAX_STAMPS)]
Time = Annotated[float, msgspec.Meta(ge=0, le=b.MAX_STAMP_S)]
OptionName = Annotated[str, msgspec.Meta(pattern=b.OPTION_NAME_PATTERN)]
OptionNumber = Annotated[float, msgspec.Meta(ge=-b.MAX_OPTION_NUMBER, le=b.MAX_OPTION_NUMBER)]
OptionInt = Annotated[int, msgspec.Meta(ge=-int(b.MAX_OPTION_NUMBER), le=int(b.MAX_OPTION_NUMBER))]
OptionText = Annotated[str, msgspec.Meta(max_length=b.MAX_OPTION_TEXT_LEN)]
OptionScalar = OptionText | OptionInt | OptionNumber | bool
# Platform settings that are not secret: text, numbers or booleans (the dashboard's form).
Options = Annotated[
    dict[OptionName, OptionScalar],
    msgspec.Meta(
        max_length=b.MAX_OPTIONS,
        description="The platform's settings, checked by its schema: docs/platform-settings.md",
    ),
]
# The config file may also give short lists, one level of pairs deep (ProjectX's
# ``rate_limit: [200, 60]``, Tradovate's ``rate_limits: [[80, 60], [5000, 3600]]``).
OptionList = Annotated[
    list[OptionScalar | Annotated[list[OptionScalar], msgspec.Meta(max_length=b.MAX_OPTION_LIST)]],
    msgspec.Meta(max_length=b.MAX_OPTION_LIST),
]
# ... and one level of names to scalars (Rithmic's ``exchanges: {ZN: CBOT}``; a root may start
# with a digit, ``6E``).
OptionKey = Annotated[str, msgspec.Meta(min_length=1, max_length=b.MAX_SYMBOL_LEN)]
OptionMap = Annotated[dict[OptionKey, OptionScalar], msgspec.Meta(max_length=b.MAX_OPTION_MAP)]
ConfigOptions = Annotated[
    dict[OptionName, OptionScalar | OptionList | OptionMap], msgspec.Meta(max_length=b.MAX_OPTIONS)
]
# Secret settings travel sealed with the login: text only.
SecretOptions = Annotated[
    dict[OptionName, OptionText],
    msgspec.Meta(
        max_length=b.MAX_OPTIONS,
        description="Secret settings as text (Tradovate's sec), checked like the others and never echoed",
    ),
]
Side = Literal["buy", "sell"]
SignalKind = Literal["new", "modify", "cancel", "fill", "flatten"]
OrderType = Literal["market", "limit", "stop", "stop_limit"]
ScalingMode = Literal["fixed", "multiplier", "ratio"]
