"""Building blocks of Grafana dashboard JSON for the ``grafana-clickhouse-datasource`` plugin.

Why a tiny model instead of hand-written JSON: every panel needs the same datasource reference, grid
placement and SQL target shape, and the tests need each panel's expected result columns, which live
next to the SQL here (they are not part of the JSON Grafana stores).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 41
DATASOURCE_TYPE = "grafana-clickhouse-datasource"
DATASOURCE_UID = "riskmon-clickhouse"  # the provisioned datasource; dashboards pick it via $datasource
DS_REF = {"type": DATASOURCE_TYPE, "uid": "${datasource}"}
ALL = "'__all'"  # custom "All" value: Grafana inserts it unformatted, so filters test for it explicitly

# query types of the plugin (QueryType in its src/types/sql.ts); legacy "format" kept for plugin v3
_FORMATS = {"timeSeries": 0, "table": 1}


def var_filter(column: str, var: str) -> str:
    """SQL condition for a multi-value template variable with an "All" option."""
    return f"({column} IN (${{{var}:singlequote}}) OR '__all' IN (${{{var}:singlequote}}))"


@dataclass(frozen=True)
class Panel:
    """One panel: a visualisation of one SQL query, with the columns the query must return."""

    title: str
    kind: str  # Grafana panel type: stat, timeseries, barchart, table, bargauge, piechart
    sql: str
    columns: tuple[str, ...]
    description: str = ""
    unit: str | None = None
    w: int = 12
    h: int = 8
    query_type: str | None = None  # default: timeSeries for timeseries panels, table otherwise
    decimals: int | None = None

    @property
    def qtype(self) -> str:
        """The plugin query type."""
        return self.query_type or ("timeSeries" if self.kind == "timeseries" else "table")


@dataclass(frozen=True)
class Dashboard:
    """A dashboard: uid (stable, so pushes overwrite), title, panels, tags, variables to show."""

    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    variables: tuple[str, ...] = ("channel", "segment")
    tags: tuple[str, ...] = field(default_factory=lambda: ("riskmon",))


def _layout(panels: tuple[Panel, ...]) -> list[dict[str, int]]:
    """Left-to-right, top-to-bottom packing on Grafana's 24-column grid."""
    x = y = row_h = 0
    out = []
    for p in panels:
        if x + p.w > 24:
            x, y, row_h = 0, y + row_h, 0
        out.append({"x": x, "y": y, "w": p.w, "h": p.h})
        x += p.w
        row_h = max(row_h, p.h)
    return out


def panel_json(p: Panel, pid: int, grid: dict[str, int]) -> dict[str, Any]:
    """One panel as Grafana JSON."""
    defaults: dict[str, Any] = {}
    if p.unit:
        defaults["unit"] = p.unit
    if p.decimals is not None:
        defaults["decimals"] = p.decimals
    options: dict[str, Any] = {}
    if p.kind == "stat":
        options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                   "colorMode": "value", "graphMode": "none", "textMode": "auto"}
    elif p.kind == "timeseries":
        options = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                   "tooltip": {"mode": "multi", "sort": "none"}}
    elif p.kind == "table":
        options = {"showHeader": True, "cellHeight": "sm"}
    return {
        "id": pid,
        "type": p.kind,
        "title": p.title,
        "description": p.description,
        "datasource": DS_REF,
        "gridPos": {"h": grid["h"], "w": grid["w"], "x": grid["x"], "y": grid["y"]},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": [{
            "refId": "A",
            "datasource": DS_REF,
            "editorType": "sql",
            "queryType": p.qtype,
            "format": _FORMATS[p.qtype],
            "rawSql": p.sql.strip(),
        }],
    }


def _custom_var(name: str, label: str, values: list[str]) -> dict[str, Any]:
    return {
        "type": "custom", "name": name, "label": label, "query": ",".join(values),
        "multi": True, "includeAll": True, "allValue": ALL,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [], "hide": 0,
    }


def _query_var(name: str, label: str, sql: str) -> dict[str, Any]:
    return {
        "type": "query", "name": name, "label": label, "datasource": DS_REF,
        "query": sql, "definition": sql, "refresh": 2, "sort": 1,
        "multi": True, "includeAll": True, "allValue": ALL,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [], "hide": 0,
    }


def variables_json(names: tuple[str, ...]) -> list[dict[str, Any]]:
    """The datasource picker plus the requested filter variables."""
    from riskmon.contract import CHANNELS

    out: list[dict[str, Any]] = [{
        "type": "datasource", "name": "datasource", "label": "ClickHouse", "query": DATASOURCE_TYPE,
        "current": {"selected": True, "text": "riskmon ClickHouse", "value": DATASOURCE_UID}, "hide": 0,
        "options": [], "refresh": 1, "regex": "",
    }]
    known = {
        "channel": lambda: _custom_var("channel", "Channel", sorted(CHANNELS)),
        "segment": lambda: _custom_var("segment", "Segment (grade)", ["A", "B", "C", "D", "E"]),
        "industry": lambda: _query_var(
            "industry", "Industry",
            "SELECT DISTINCT industry FROM enterprise_health ORDER BY industry"),
    }
    out.extend(known[n]() for n in names)
    return out


def dashboard_json(d: Dashboard) -> dict[str, Any]:
    """The complete Grafana dashboard model."""
    grids = _layout(d.panels)
    return {
        "uid": d.uid,
        "title": d.title,
        "description": d.description,
        "tags": list(d.tags),
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-7d", "to": "now"},
        "timepicker": {"refresh_intervals": ["30s", "1m", "5m", "15m", "1h"]},
        "templating": {"list": variables_json(d.variables)},
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["riskmon"], "asDropdown": True, "title": "riskmon",
                   "includeVars": True, "keepTime": True}],
        "panels": [panel_json(p, i + 1, g) for i, (p, g) in enumerate(zip(d.panels, grids, strict=True))],
    }
