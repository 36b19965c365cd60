"""The four riskmon dashboards: panels and their SQL over the ClickHouse facts.

Every query reads facts with ``FINAL`` (or counts distinct record ids), so a batch the sink retried or a
replay of old offsets never inflates a number. Time filters use the plugin's macros (``$__timeFilter``,
``$__timeInterval``, ``$__toTime``), which :mod:`dashboards.macros` expands the same way for tests and
the HTML report.
"""

from __future__ import annotations

from dashboards.model import Dashboard, Panel, var_filter

CH = var_filter("channel", "channel")
SEG = var_filter("grade", "segment")
IND = var_filter("industry", "industry")
BUCKET_ORDER = "['current', '1-29', '30-59', '60-89', '90+']"
DEC = f"decisions FINAL WHERE $__timeFilter(ts) AND {CH} AND {SEG}"

RISK_OPS = Dashboard(
    uid="riskmon-risk-ops",
    title="Risk ops overview",
    description="Purchase volume, financed amount, default probability, alerts and limit actions.",
    panels=(
        Panel("Purchases scored", "stat", f"SELECT count() AS purchases FROM {DEC}", ("purchases",), w=6, h=4),
        Panel("Amount financed", "stat", f"SELECT sum(amount) AS amount FROM {DEC}", ("amount",),
              unit="currencyCNY", w=6, h=4),
        Panel("Average default probability", "stat", f"SELECT avg(pd) AS avg_pd FROM {DEC}", ("avg_pd",),
              unit="percentunit", decimals=2, w=6, h=4),
        Panel("Critical alerts", "stat",
              "SELECT uniqExact(alert_id) AS critical_alerts FROM alerts FINAL "
              "WHERE $__timeFilter(ts) AND severity = 'critical'", ("critical_alerts",), w=6, h=4),
        Panel("Purchase volume", "timeseries",
              f"SELECT $__timeInterval(ts) AS time, count() AS purchases, countIf(NOT within_limit) AS over_limit "
              f"FROM {DEC} GROUP BY time ORDER BY time", ("time", "purchases", "over_limit"), w=8),
        Panel("Amount financed per interval", "timeseries",
              f"SELECT $__timeInterval(ts) AS time, sum(amount) AS amount FROM {DEC} GROUP BY time ORDER BY time",
              ("time", "amount"), unit="currencyCNY", w=8),
        Panel("Average default probability by channel", "timeseries",
              f"SELECT $__timeInterval(ts) AS time, channel, avg(pd) AS avg_pd FROM {DEC} "
              "GROUP BY time, channel ORDER BY time, channel", ("time", "channel", "avg_pd"),
              unit="percentunit", w=8),
        Panel("Alerts by kind", "timeseries",
              "SELECT $__timeInterval(ts) AS time, kind, count() AS alerts FROM alerts FINAL "
              "WHERE $__timeFilter(ts) GROUP BY time, kind ORDER BY time, kind", ("time", "kind", "alerts")),
        Panel("Alerts by severity", "barchart",
              "SELECT severity, count() AS alerts FROM alerts FINAL WHERE $__timeFilter(ts) GROUP BY severity "
              "ORDER BY indexOf(['info', 'warning', 'high', 'critical'], severity)", ("severity", "alerts"),
              w=6),
        Panel("Limit changes by action", "timeseries",
              "SELECT $__timeInterval(ts) AS time, action, count() AS changes FROM limit_changes FINAL "
              "WHERE $__timeFilter(ts) AND action != 'initial' GROUP BY time, action ORDER BY time, action",
              ("time", "action", "changes"), w=6),
        Panel("Grade mix", "table",
              f"SELECT grade, count() AS purchases, sum(amount) AS amount, round(avg(pd), 4) AS avg_pd "
              f"FROM {DEC} GROUP BY grade ORDER BY grade", ("grade", "purchases", "amount", "avg_pd")),
        Panel("Dead letters by reason", "table",
              "SELECT topic, reason, count() AS messages FROM dead_letters FINAL WHERE $__timeFilter(ts) "
              "GROUP BY topic, reason ORDER BY messages DESC LIMIT 20", ("topic", "reason", "messages")),
    ),
)

_TRANSITIONS = f"""
WITH exits AS (
    SELECT prev_bucket AS from_bucket, count() AS exits, countIf(step > 0) AS rolled,
           countIf(bucket = 'current') AS cured
    FROM dpd_transitions WHERE $__timeFilter(ts) GROUP BY from_bucket
), base AS (
    SELECT uniqExact(user_id) AS active FROM decisions FINAL WHERE $__timeFilter(ts)
)
SELECT from_bucket,
       arrayElement({BUCKET_ORDER}, indexOf({BUCKET_ORDER}, from_bucket) + 1) AS to_bucket,
       if(from_bucket = 'current', (SELECT active FROM base), exits) AS base_accounts,
       rolled,
       cured,
       round(rolled / greatest(base_accounts, 1), 4) AS roll_rate
FROM exits
WHERE from_bucket != '90+'
ORDER BY indexOf({BUCKET_ORDER}, from_bucket)
"""

COLLECTIONS = Dashboard(
    uid="riskmon-collections",
    title="Collections and delinquency",
    description="DPD buckets, roll rates current -> 1-29 -> 30-59 -> 60-89 -> 90+, collector pages, cures.",
    variables=(),
    panels=(
        Panel("Accounts delinquent now", "stat",
              "SELECT countIf(bucket != 'current') AS delinquent FROM (SELECT user_id, argMax(bucket, ts) AS bucket "
              "FROM dpd_snapshots FINAL WHERE ts <= $__toTime GROUP BY user_id)", ("delinquent",), w=6, h=4),
        Panel("Collector pages sent", "stat",
              "SELECT uniqExact(alert_id) AS pages FROM alerts FINAL WHERE $__timeFilter(ts) "
              "AND kind = 'collector_page'", ("pages",), w=6, h=4),
        Panel("Cures", "stat",
              "SELECT count() AS cures FROM dpd_transitions WHERE $__timeFilter(ts) AND bucket = 'current'",
              ("cures",), w=6, h=4),
        Panel("Bureau reports", "stat",
              "SELECT uniqExact(report_id) AS reports FROM bureau_reports FINAL WHERE $__timeFilter(ts)",
              ("reports",), w=6, h=4),
        Panel("DPD bucket distribution (latest per account)", "barchart",
              f"SELECT bucket, count() AS accounts, sum(outstanding) AS outstanding FROM ("
              f"SELECT user_id, argMax(bucket, ts) AS bucket, argMax(outstanding, ts) AS outstanding "
              f"FROM dpd_snapshots FINAL WHERE ts <= $__toTime GROUP BY user_id) GROUP BY bucket "
              f"ORDER BY indexOf({BUCKET_ORDER}, bucket)", ("bucket", "accounts", "outstanding")),
        Panel("Roll rates", "table", _TRANSITIONS,
              ("from_bucket", "to_bucket", "base_accounts", "rolled", "cured", "roll_rate"),
              description="Share of accounts leaving a bucket that roll forward; the current row is new "
              "delinquencies over active (purchasing) accounts."),
        Panel("Roll forward vs cures", "timeseries",
              "SELECT $__timeInterval(ts) AS time, countIf(step > 0) AS rolled, countIf(bucket = 'current') AS cured "
              "FROM dpd_transitions WHERE $__timeFilter(ts) GROUP BY time ORDER BY time", ("time", "rolled", "cured")),
        Panel("Collection ladder steps", "timeseries",
              "SELECT $__timeInterval(ts) AS time, kind, count() AS alerts FROM alerts FINAL WHERE $__timeFilter(ts) "
              "AND subject_type = 'user' AND kind NOT IN ('high_risk_purchase', 'fraud_suspected') "
              "GROUP BY time, kind ORDER BY time, kind", ("time", "kind", "alerts")),
        Panel("Overdue amount entering buckets", "timeseries",
              "SELECT $__timeInterval(ts) AS time, bucket, sum(overdue) AS overdue FROM dpd_snapshots FINAL "
              "WHERE $__timeFilter(ts) AND bucket != 'current' GROUP BY time, bucket ORDER BY time, bucket",
              ("time", "bucket", "overdue"), unit="currencyCNY"),
        Panel("Repayments by method", "table",
              "SELECT method, count() AS repayments, sum(amount) AS amount, round(avg(on_time), 4) AS on_time_rate "
              "FROM repayments FINAL WHERE $__timeFilter(ts) GROUP BY method ORDER BY amount DESC",
              ("method", "repayments", "amount", "on_time_rate")),
    ),
)

EWS = Dashboard(
    uid="riskmon-enterprise-ews",
    title="Enterprise early warning",
    description="Early-warning signals by industry, health scores and the watch list.",
    variables=("industry",),
    panels=(
        Panel("Enterprises on watch list", "stat",
              f"SELECT countIf(watchlist) AS on_watchlist FROM enterprise_latest WHERE last_ts <= $__toTime AND {IND}",
              ("on_watchlist",), w=8, h=4),
        Panel("Open signals", "stat",
              f"SELECT count() AS signals FROM enterprise_signals WHERE $__timeFilter(ts) AND {IND}",
              ("signals",), w=8, h=4),
        Panel("Early-warning alerts", "stat",
              "SELECT uniqExact(alert_id) AS alerts FROM alerts FINAL WHERE $__timeFilter(ts) "
              "AND subject_type = 'enterprise'", ("alerts",), w=8, h=4),
        Panel("Signals by industry", "timeseries",
              f"SELECT $__timeInterval(ts) AS time, industry, count() AS signals FROM enterprise_signals "
              f"WHERE $__timeFilter(ts) AND {IND} GROUP BY time, industry ORDER BY time, industry",
              ("time", "industry", "signals")),
        Panel("Signals by type and industry", "table",
              f"SELECT industry, signal, count() AS occurrences, uniqExact(enterprise_id) AS enterprises "
              f"FROM enterprise_signals WHERE $__timeFilter(ts) AND {IND} GROUP BY industry, signal "
              f"ORDER BY occurrences DESC", ("industry", "signal", "occurrences", "enterprises")),
        Panel("Average health score by industry", "timeseries",
              f"SELECT $__timeInterval(ts) AS time, industry, avg(health_score) AS health FROM enterprise_health FINAL "
              f"WHERE $__timeFilter(ts) AND {IND} GROUP BY time, industry ORDER BY time, industry",
              ("time", "industry", "health")),
        Panel("Revenue by industry", "timeseries",
              f"SELECT $__timeInterval(ts) AS time, industry, sum(value) AS revenue FROM enterprise_metrics FINAL "
              f"WHERE $__timeFilter(ts) AND metric = 'revenue' AND {IND} GROUP BY time, industry ORDER BY time, industry",
              ("time", "industry", "revenue")),
        Panel("Watch list", "table",
              f"SELECT enterprise_id, industry, grade, round(health_score, 1) AS health_score, "
              f"arrayStringConcat(open_signals, ', ') AS signals, recommendation, last_ts AS updated "
              f"FROM enterprise_latest WHERE watchlist AND last_ts <= $__toTime AND {IND} "
              f"ORDER BY health_score LIMIT 100",
              ("enterprise_id", "industry", "grade", "health_score", "signals", "recommendation", "updated"),
              w=24, h=10),
    ),
)

MODEL = Dashboard(
    uid="riskmon-model-health",
    title="Model health",
    description="Prequential AUC and log-loss on delayed labels, calibration, score drift, feature freshness.",
    variables=("channel",),
    panels=(
        Panel("Prequential AUC", "timeseries",
              "SELECT $__timeInterval(ts) AS time, model_version, avg(auc) AS auc FROM model_metrics FINAL "
              "WHERE $__timeFilter(ts) GROUP BY time, model_version ORDER BY time, model_version",
              ("time", "model_version", "auc")),
        Panel("Prequential log-loss", "timeseries",
              "SELECT $__timeInterval(ts) AS time, model_version, avg(logloss) AS logloss FROM model_metrics FINAL "
              "WHERE $__timeFilter(ts) GROUP BY time, model_version ORDER BY time, model_version",
              ("time", "model_version", "logloss")),
        Panel("Calibration by PD decile", "table",
              f"SELECT least(floor(d.pd * 10), 9) / 10 AS pd_decile, count() AS decisions, "
              f"round(avg(d.pd), 4) AS mean_pd, round(avg(f.first_default > d.ts), 4) AS observed_30dpd "
              f"FROM (SELECT user_id, ts, pd FROM decisions FINAL WHERE $__timeFilter(ts) AND {CH}) AS d "
              f"LEFT JOIN (SELECT user_id, min(ts) AS first_default FROM dpd_snapshots FINAL WHERE dpd >= 30 "
              f"GROUP BY user_id) AS f ON d.user_id = f.user_id GROUP BY pd_decile ORDER BY pd_decile",
              ("pd_decile", "decisions", "mean_pd", "observed_30dpd"),
              description="Mean predicted PD against the share of decisions whose account later reached 30 DPD."),
        Panel("Score distribution (PD quantiles)", "timeseries",
              f"SELECT $__timeInterval(ts) AS time, quantileExact(0.5)(pd) AS p50, quantileExact(0.9)(pd) AS p90, "
              f"quantileExact(0.99)(pd) AS p99 FROM decisions FINAL WHERE $__timeFilter(ts) AND {CH} "
              f"GROUP BY time ORDER BY time", ("time", "p50", "p90", "p99"), unit="percentunit"),
        Panel("Grade mix over time", "timeseries",
              f"SELECT $__timeInterval(ts) AS time, grade, count() AS purchases FROM decisions FINAL "
              f"WHERE $__timeFilter(ts) AND {CH} GROUP BY time, grade ORDER BY time, grade",
              ("time", "grade", "purchases")),
        Panel("Feature freshness", "table",
              "WITH src AS (SELECT 'decisions' AS source, max(ts) AS last_event FROM decisions "
              "UNION ALL SELECT 'repayments', max(ts) FROM repayments "
              "UNION ALL SELECT 'dpd_snapshots', max(ts) FROM dpd_snapshots "
              "UNION ALL SELECT 'enterprise_metrics', max(ts) FROM enterprise_metrics "
              "UNION ALL SELECT 'model_metrics', max(ts) FROM model_metrics) "
              "SELECT source, last_event, dateDiff('second', last_event, "
              "(SELECT max(last_event) FROM src WHERE last_event <= $__toTime)) "
              "AS lag_behind_freshest_s FROM src WHERE last_event <= $__toTime ORDER BY lag_behind_freshest_s DESC",
              ("source", "last_event", "lag_behind_freshest_s"),
              description="Event-time lag of each feed behind the freshest one (a stalled feed stands out)."),
        Panel("Labels learned", "stat",
              "SELECT sum(n) AS labels FROM (SELECT worker, max(n_labels) AS n FROM model_metrics FINAL "
              "WHERE ts <= $__toTime GROUP BY worker)", ("labels",), w=12, h=4),
    ),
)

DASHBOARDS: tuple[Dashboard, ...] = (RISK_OPS, COLLECTIONS, EWS, MODEL)
