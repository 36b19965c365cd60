"""Sinks: where riskmon's output streams leave the stream processor (ClickHouse facts, alert hooks)."""
