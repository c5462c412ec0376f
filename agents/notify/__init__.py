"""Alerts where the trader is: rejects, unknown outcomes, disconnects, drift, guards, the kill switch → webhooks."""
