-- Deduplicated, derived views the dashboards and the report share. Plain views (not materialised):
-- an aggregating materialised view sums every insert, so a retried batch would count twice; views over
-- FINAL facts always read each record once.

CREATE VIEW IF NOT EXISTS enterprise_signals AS
SELECT
    ts,
    enterprise_id,
    industry,
    grade,
    health_score,
    watchlist,
    arrayJoin(open_signals) AS signal
FROM enterprise_health FINAL;

-- Latest known health of every enterprise (the watch list reads this).
CREATE VIEW IF NOT EXISTS enterprise_latest AS
SELECT
    enterprise_id,
    argMax(industry, ts) AS industry,
    argMax(grade, ts) AS grade,
    argMax(health_score, ts) AS health_score,
    argMax(open_signals, ts) AS open_signals,
    argMax(watchlist, ts) AS watchlist,
    argMax(recommendation, ts) AS recommendation,
    max(ts) AS last_ts
FROM enterprise_health FINAL
GROUP BY enterprise_id;

-- Transitions between DPD buckets in order current -> 1-29 -> 30-59 -> 60-89 -> 90+ (and cures back).
CREATE VIEW IF NOT EXISTS dpd_transitions AS
SELECT
    ts,
    user_id,
    prev_bucket,
    bucket,
    indexOf(['current', '1-29', '30-59', '60-89', '90+'], bucket)
        - indexOf(['current', '1-29', '30-59', '60-89', '90+'], prev_bucket) AS step,
    outstanding
FROM dpd_snapshots FINAL
WHERE bucket != prev_bucket;
