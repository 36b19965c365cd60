"""Kafka plumbing: the Faust app, topics, and one thin agent per input topic (``streams.agents``)."""
