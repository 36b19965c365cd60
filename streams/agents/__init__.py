"""One module per agent. Each exposes ``register(app, ...)`` and stays a few lines: decode, decide, emit."""
