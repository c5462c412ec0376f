"""One schema per door (msgspec; why in docs/validation.md): the signal record, the webhook and
REST bodies, the YAML config and the ``copy.controls`` records.

The domain core: nothing here imports ``agents`` or ``web``. Bounds live in ``common/bounds.py``
with the reason for each, and ``common/schema_codec.py`` turns a refusal into
``SchemaError(field, reason)``: both are below ``brokers``, whose platform settings have schemas
of their own (``brokers/options.py``). A platform's own formats come from its package (the
config's dxFeed symbols are ``brokers.dxlink.options.FeedSymbol``).
"""

from __future__ import annotations

from ...common import bounds
from ...common.schema_codec import SchemaError, convert, decode, to_builtins
from .config import AccountIn, ConfigIn, FollowerIn, GroupIn, RuleIn, SessionIn
from .controls import AccountRecord, PauseRecord, RuleRecord, record_type
from .signal import SignalIn
from .web import (
    UNSET,
    WRITE_BODIES,
    AccountCreate,
    AccountPatch,
    ControlTarget,
    Credentials,
    FollowerRuleBody,
    LoginBody,
)

__all__ = [
    "UNSET",
    "WRITE_BODIES",
    "AccountCreate",
    "AccountIn",
    "AccountPatch",
    "AccountRecord",
    "ConfigIn",
    "ControlTarget",
    "Credentials",
    "FollowerIn",
    "FollowerRuleBody",
    "GroupIn",
    "LoginBody",
    "PauseRecord",
    "RuleIn",
    "RuleRecord",
    "SchemaError",
    "SessionIn",
    "SignalIn",
    "bounds",
    "convert",
    "decode",
    "record_type",
    "to_builtins",
]
