-- Fact tables: one row per output record. ReplacingMergeTree ORDER BY the record id, so a retried or
-- replayed record collapses into one row (queries read with FINAL); partitioned by event-time month.
-- non_replicated_deduplication_window lets the writer's insert_deduplication_token drop a retried batch
-- that had in fact landed, before it ever reaches a merge.

CREATE TABLE IF NOT EXISTS decisions (
    event_id String,
    ts DateTime64(3, 'UTC'),
    user_id String,
    order_id String,
    amount Decimal(18, 2),
    channel LowCardinality(String),
    category LowCardinality(String),
    installments UInt8,
    pd Float64,
    anomaly Float64,
    grade LowCardinality(String),
    apr_bps UInt32,
    model_version LowCardinality(String),
    utilisation Float64,
    within_limit Bool
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS repayments (
    event_id String,
    ts DateTime64(3, 'UTC'),
    user_id String,
    amount Decimal(18, 2),
    method LowCardinality(String),
    outstanding_after Decimal(18, 2),
    on_time Bool,
    dpd_before UInt16
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS limit_changes (
    event_id String,
    ts DateTime64(3, 'UTC'),
    user_id String,
    action LowCardinality(String),
    old_limit Decimal(18, 2),
    new_limit Decimal(18, 2),
    reason_codes Array(String),
    score Nullable(Float64),
    grade LowCardinality(Nullable(String)),
    model_version LowCardinality(Nullable(String))
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS alerts (
    alert_id String,
    ts DateTime64(3, 'UTC'),
    kind LowCardinality(String),
    severity LowCardinality(String),
    subject_type LowCardinality(String),
    subject_id String,
    dedup_key String,
    summary String,
    details String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY alert_id
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS bureau_reports (
    report_id String,
    ts DateTime64(3, 'UTC'),
    user_id String,
    outstanding Decimal(18, 2),
    dpd UInt16,
    first_due_unpaid DateTime64(3, 'UTC'),
    episode_id String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY report_id
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS dpd_snapshots (
    event_id String,
    ts DateTime64(3, 'UTC'),
    user_id String,
    dpd UInt16,
    prev_dpd UInt16,
    bucket LowCardinality(String),
    prev_bucket LowCardinality(String),
    outstanding Decimal(18, 2),
    overdue Decimal(18, 2)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS enterprise_metrics (
    event_id String,
    ts DateTime64(3, 'UTC'),
    enterprise_id String,
    industry LowCardinality(String),
    metric LowCardinality(String),
    value Float64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS enterprise_health (
    event_id String,
    ts DateTime64(3, 'UTC'),
    enterprise_id String,
    industry LowCardinality(String),
    grade LowCardinality(String),
    health_score Float64,
    open_signals Array(String),
    watchlist Bool,
    recommendation String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS model_metrics (
    event_id String,
    ts DateTime64(3, 'UTC'),
    model LowCardinality(String),
    model_version LowCardinality(String),
    n_labels UInt32,
    auc Float64,
    logloss Float64,
    positives UInt32,
    worker LowCardinality(String)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 10000;

-- dead letters carry no event time; ts is the Kafka timestamp of the dead-letter message.
CREATE TABLE IF NOT EXISTS dead_letters (
    dead_letter_id String,
    ts DateTime64(3, 'UTC'),
    topic LowCardinality(String),
    partition UInt32,
    offset UInt64,
    payload String,
    truncated Bool,
    reason String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY dead_letter_id
SETTINGS non_replicated_deduplication_window = 10000;
