"""Sierra Chart DTC (Data and Trading Communications) protocol: codec and simulator."""
