"""What a REST copy costs when its connection is open, and when it is not (#16 item 3).

Why: a REST platform's order on an open connection is one round trip; on a new one it is TCP,
TLS and then the request, plus the handshake's CPU, paid by every follower of a signal at
once. ``brokers/warm_http.py`` keeps the connections open; this script shows what that is
worth on this machine (docs/benchmarks.md, "REST connections that stay open").

What it does: runs the Tradovate simulator in a child process (its CPU is not ours), over TLS
with a self-signed certificate unless ``--plain``; signs in ``--sessions`` follower sessions
(one login each, as prop-firm accounts are), and then, ``--rounds`` times, lets every session
place one market order at once, ``--gap`` seconds apart. Per round it prints the slowest and
median order (place → ack), the client process's CPU per order, and the connections the
client opened. Run it with ``--warm-every 0`` and aiohttp's 15 s pool (``--pool 15``) to see
the code before the change. One JSON line per round, then a summary line.

Usage: ``python scripts/rest_warmth.py [--sessions 50] [--gap 20] [--rounds 4] [--plain]
[--warm-every S] [--pool S]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def _serve(cert: str | None, key: str | None, sessions: int, out: Any) -> None:
    """The child process: the simulator, its URL and each login's credentials sent back."""
    from copytrader.brokers.simkernel.logins import plan_logins
    from copytrader.brokers.simkernel.tls import server_context
    from copytrader.brokers.tradovate.simulator import create_simulator

    async def main() -> None:
        names = [f"DEMO{2000 + n}" for n in range(sessions)]
        tls = server_context(Path(cert), Path(key)) if cert and key else None
        sim = create_simulator(logins=plan_logins(names, 1, prefix="trader"), tls=tls, tick_ms=50)
        await sim.start()
        out.send({"base_url": sim.base_url, "logins": [sim.credentials_for(u.name) for u in sim.users]})
        await asyncio.Event().wait()

    asyncio.run(main())


async def _timed(call: Any) -> float:
    """Milliseconds until ``call`` (an awaitable) is done."""
    started = time.perf_counter()
    await call
    return (time.perf_counter() - started) * 1000


async def _measure(info: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    import aiohttp

    from copytrader.brokers import warm_http
    from copytrader.brokers.base import SessionConfig
    from copytrader.brokers.model import PlaceOrder, Side
    from copytrader.brokers.tradovate.adapter import TradovateAdapter

    warm_http.KEEPALIVE_S = args.pool  # the pool under test (aiohttp's own default: 15 s)
    opened = 0
    create = aiohttp.TCPConnector._create_connection

    async def counting(self: Any, *a: Any, **k: Any) -> Any:
        nonlocal opened
        opened += 1
        return await create(self, *a, **k)

    aiohttp.TCPConnector._create_connection = counting  # type: ignore[method-assign]
    adapters = []
    for n, login in enumerate(info["logins"]):
        config = SessionConfig(
            platform="tradovate",
            session_id=f"s{n}",
            endpoint=info["base_url"],
            accounts={"f": login["accounts"][0]},
            username=login["name"],
            secret=login["password"],
            options={
                **{k: login[k] for k in ("appId", "cid", "sec", "deviceId")},
                "warm_every_s": args.warm_every,
            },
        )
        adapters.append(TradovateAdapter(config))
    await asyncio.gather(*(a.connect() for a in adapters))
    rounds = []
    for r in range(args.rounds):
        await asyncio.sleep(args.gap)
        before, cpu = opened, time.process_time()

        took = await asyncio.gather(
            *(_timed(a.place(PlaceOrder("f", f"w{r}-{n}", "ESZ6", Side.BUY, 1))) for n, a in enumerate(adapters))
        )
        rounds.append(
            {
                "round": r + 1,
                "orders": len(took),
                "median_ms": round(statistics.median(took), 2),
                "slowest_ms": round(max(took), 2),
                "client_cpu_ms_per_order": round((time.process_time() - cpu) * 1000 / len(took), 3),
                "connections_opened": opened - before,
            }
        )
        print(json.dumps(rounds[-1]), flush=True)
    await asyncio.gather(*(a.disconnect() for a in adapters))
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--gap", type=float, default=20.0, help="seconds between rounds (idle)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--plain", action="store_true", help="HTTP and WS instead of TLS")
    parser.add_argument("--warm-every", type=float, default=25.0, help="the sessions' warm_every_s (0: off)")
    parser.add_argument("--pool", type=float, default=60.0, help="seconds the pool keeps an idle connection")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cert = key = None
        if not args.plain:
            from copytrader.brokers.simkernel.tls import self_signed

            cert_path, key_path = self_signed(Path(tmp))
            cert, key = str(cert_path), str(key_path)
            os.environ["SSL_CERT_FILE"] = cert  # the adapters' default context trusts it
        receive, send = multiprocessing.Pipe(duplex=False)
        child = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(cert, key, args.sessions, send), daemon=True
        )
        child.start()
        try:
            info = receive.recv()
            rounds = asyncio.run(_measure(info, args))
        finally:
            child.terminate()
    later = rounds[1:] or rounds
    summary = {
        "summary": True,
        "tls": not args.plain,
        "sessions": args.sessions,
        "gap_s": args.gap,
        "warm_every_s": args.warm_every,
        "pool_s": args.pool,
        "median_ms": round(statistics.median(r["median_ms"] for r in later), 2),
        "slowest_ms": round(statistics.median(r["slowest_ms"] for r in later), 2),
        "client_cpu_ms_per_order": round(statistics.median(r["client_cpu_ms_per_order"] for r in later), 3),
        "connections_opened_per_round": statistics.median(r["connections_opened"] for r in later),
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
