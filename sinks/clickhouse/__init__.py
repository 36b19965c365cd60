"""ClickHouse analytics store: versioned migrations, the buffered idempotent fact writer, the sink consumer.

Why a separate process: ClickHouse wants large batches while the stream wants low latency, so the
``riskmon sink`` consumer buffers output records and writes them in bulk, committing Kafka offsets only
after ClickHouse has the rows. Every fact table is a ReplacingMergeTree keyed by the record id, so a
retried or replayed batch never shows up twice in a dashboard.
"""
