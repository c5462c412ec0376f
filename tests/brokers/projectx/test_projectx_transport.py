"""The transport's retry policy: what may be sent again, and re-login with backoff."""

from __future__ import annotations

import pytest
from projectx_helpers import session_config

from copytrader.brokers.errors import AuthenticationFailed, BrokerUnavailable, RateLimited, TokenExpired
from copytrader.brokers.model import PlaceOrder, Side
from copytrader.brokers.projectx.adapter import ProjectXAdapter
from copytrader.brokers.projectx.simulator import create_simulator
from copytrader.brokers.projectx.simulator.auth import TokenService
from copytrader.brokers.projectx.transport import may_retry
from copytrader.brokers.simkernel.exchange import SimExchange


@pytest.mark.parametrize(
    ("error", "idempotent", "retry"),
    [
        (TokenExpired("401"), False, True),  # refused before running
        (RateLimited("429"), False, True),  # refused before running
        (BrokerUnavailable("refused", sent=False), False, True),  # never left
        (BrokerUnavailable("reset", sent=True), False, False),  # may have run: a place is never resent
        (BrokerUnavailable("reset", sent=True), True, True),  # a search may be asked again
        (AuthenticationFailed("bad key"), True, False),
    ],
)
def test_only_what_never_ran_or_is_idempotent_is_retried(error: Exception, idempotent: bool, retry: bool) -> None:
    assert may_retry(error, idempotent) is retry


async def test_relogin_backs_off_while_the_login_is_throttled() -> None:
    """A 401 whose renewal is refused logs in again; a throttled (429) login is retried with backoff."""
    sim = create_simulator(SimExchange(seed=5), tick_ms=0)
    logins_seen: list[bool] = []
    admit = sim.admit

    def throttling_admit(user: str, path: str) -> bool:
        if path != "/api/Auth/loginKey":
            return admit(user, path)
        allowed = len(logins_seen) not in (1, 2)  # the first two re-logins are throttled
        logins_seen.append(allowed)
        return allowed and admit(user, path)

    sim.admit = throttling_admit  # type: ignore[method-assign]  # a gateway that throttles logins
    await sim.start()
    adapter = ProjectXAdapter(session_config(sim))
    try:
        await adapter.connect()
        sim.tokens = TokenService()  # every token forged now: validate refused, login needed
        logins = adapter.session.logins
        await adapter.place(PlaceOrder("f1", "backoff-1", "ESZ6", Side.BUY, 1))
        assert adapter.session.logins == logins + 1
        assert logins_seen == [True, False, False, True]
        assert len(sim.exchange.orders_with_client_id("PX-FOLLOWER-1", "backoff-1")) == 1
    finally:
        await adapter.disconnect()
        await sim.stop()
