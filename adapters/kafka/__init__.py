"""Kafka adapters (kafka-python): the `EventBus` producer, topic provisioning, a health probe."""
