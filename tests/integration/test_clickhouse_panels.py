"""Every dashboard panel's SQL, macro-expanded, runs on the real engine and returns the expected columns.

Data source: the ``analytics_records`` fixture below. It prefers a ``replay_analytics_records`` fixture
(a real simulator replay's (topic, record) pairs, to be provided in tests/conftest.py) and falls back to
the deterministic records of :mod:`sinks.clickhouse.sample`, built with the ``riskmon.outputs`` builders.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboards.catalog import DASHBOARDS
from dashboards.macros import ALL, TimeRange, dashboard_all_values, expand
from dashboards.model import dashboard_json
from riskmon.eventtime import parse_ts
from sinks.clickhouse.client import connect
from sinks.clickhouse.migrations import migrate
from sinks.clickhouse.sample import load, sample_records

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def analytics_records(request):
    """(topic, record) pairs to load; swap point for a simulator replay."""
    try:
        return request.getfixturevalue("replay_analytics_records")
    except pytest.FixtureLookupError:
        return sample_records()


@pytest.fixture(scope="module")
def loaded(analytics_records, tmp_path_factory):
    """A migrated chdb loaded twice with the records (the second load is a replay: no number may move)."""
    client = connect(f"chdb://{tmp_path_factory.mktemp('ch') / 'db'}")
    migrate(client)
    load(client, analytics_records)
    load(client, analytics_records[::-1], max_rows=997)  # other batch shapes: tokens differ, FINAL dedups
    ts = [parse_ts(r["ts"]) for _, r in analytics_records if "ts" in r]
    start = datetime.fromtimestamp(min(ts) // 1000, UTC).replace(hour=0, minute=0, second=0)
    end = datetime.fromtimestamp(max(ts) // 1000, UTC) + timedelta(seconds=1)
    yield client, TimeRange(start, end)
    client.close()


PANELS = [(d, i, p) for d in DASHBOARDS for i, p in enumerate(d.panels)]


@pytest.mark.parametrize(("dash", "idx", "panel"), PANELS, ids=[f"{d.uid}:{p.title}" for d, _, p in PANELS])
def test_panel_sql_returns_rows_with_expected_columns(loaded, dash, idx, panel):
    client, tr = loaded
    model = dashboard_json(dash)
    raw = model["panels"][idx]["targets"][0]["rawSql"]
    for values in ({"channel": ALL, "segment": ALL, "industry": ALL},
                   {"channel": ["app", "web"], "segment": ["A", "B", "C"], "industry": ["retail", "software"]}):
        sql = expand(raw, tr, values, dashboard_all_values(model))
        result = client.query(sql)
        assert tuple(result.column_names) == panel.columns, sql
        assert result.result_rows, f"{panel.title}: no rows for {values}"
        if panel.kind == "timeseries":
            times = [r[0] for r in result.result_rows]
            assert times == sorted(times) and isinstance(times[0], datetime)


def test_filters_and_replays_give_exact_numbers(loaded, analytics_records):
    """Panel numbers equal the records' own numbers, after a duplicate load, for All and a filter."""
    from decimal import Decimal

    client, tr = loaded
    decisions = [r for t, r in analytics_records if t == "decisions"]
    model = dashboard_json(DASHBOARDS[0])
    for values, keep in (({"channel": ALL, "segment": ALL}, lambda r: True),
                         ({"channel": ["pos"], "segment": ["A", "E"]},
                          lambda r: r["channel"] == "pos" and r["grade"] in ("A", "E"))):
        want = [r for r in decisions if keep(r)]
        got = {}
        for idx in (0, 1):
            sql = expand(model["panels"][idx]["targets"][0]["rawSql"], tr, values, dashboard_all_values(model))
            got[idx] = client.query(sql).result_rows[0][0]
        assert got[0] == len(want)
        assert got[1] == sum(Decimal(r["amount"]) for r in want)
