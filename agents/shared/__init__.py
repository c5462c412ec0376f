"""What the stages share: Kafka outboxes and feeds, the broker session pool, the heartbeat, the stage context."""
