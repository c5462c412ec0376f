"""``python -m copytrader.demo.worker worker``: the product's worker plus the demo's scripted leader.

The scripted leader is harness, not product: the demo adds it to the one worker it starts
with the ``ingest`` role (the paper leader's venue lives in that process). The product's
worker, its roles and its factory know nothing of it.
"""

from __future__ import annotations

from ..app.cli import main as copytrader_main
from . import trader


def main() -> None:
    copytrader_main(extend=trader.install)


if __name__ == "__main__":
    main()
