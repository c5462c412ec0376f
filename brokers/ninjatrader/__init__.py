"""NinjaTrader 8 through its Automated Trading Interface: the TCP port or the OIF folders."""
