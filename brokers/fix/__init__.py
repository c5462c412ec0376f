"""FIX 4.2/4.4 order routing through the QuickFIX engine (docs/fidelity/fix.md)."""
