"""State stores: where account state, timers and model checkpoints live (Redis)."""
