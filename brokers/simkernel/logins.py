"""Who may log in to a simulator, and which accounts each login sees.

Real prop-firm accounts come one login per firm (often one per account), and the platforms
count sessions and request budgets per user. A simulator that served every follower through
one login with one shared budget forgave what the real platforms do not (a leader's own orders
were refused when twenty followers shared its window), so both simulators take a list of
:class:`SimLogin` and keep their limits per user name.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["SimLogin", "plan_logins"]


@dataclass(frozen=True, slots=True)
class SimLogin:
    """One user of a simulator: its name, its secret (password or API key) and its accounts."""

    username: str
    secret: str = field(repr=False)
    accounts: tuple[str, ...]


def plan_logins(
    accounts: Sequence[str], accounts_per_login: int | None = 1, *, prefix: str = "trader"
) -> list[SimLogin]:
    """Group ``accounts`` into logins of ``accounts_per_login`` each (``None``: one login for all).

    Secrets are random UUIDs, shaped like the API keys real platforms issue.
    """
    names = list(accounts)
    if accounts_per_login is None:
        size = max(1, len(names))
    elif accounts_per_login < 1:
        raise ValueError(f"accounts_per_login must be at least 1, got {accounts_per_login}")
    else:
        size = accounts_per_login
    logins = []
    for n, start in enumerate(range(0, len(names), size), start=1):
        logins.append(SimLogin(f"{prefix}{n:03d}", str(uuid.uuid4()), tuple(names[start : start + size])))
    return logins
