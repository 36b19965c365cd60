"""The self-contained HTML report: every dashboard panel as an inline-SVG chart, rendered from ClickHouse.

Why: not every reader has Grafana, and incident reviews want a file that can be mailed or archived. The
page carries its data and a small plain-JS SVG renderer inline (no CDN: it must open offline), runs the
same panel SQL as Grafana (through :mod:`dashboards.macros`) over the data's own event-time range, and
marks every chart ``data-rendered`` and collects script errors in ``window.__errors`` so a headless
browser test can prove it rendered.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from dashboards.catalog import DASHBOARDS
from dashboards.macros import ALL, TimeRange, dashboard_all_values, expand
from dashboards.model import dashboard_json

_RANGE_SQL = """
SELECT min(lo), max(hi) FROM (
    SELECT min(ts) AS lo, max(ts) AS hi FROM decisions
    UNION ALL SELECT min(ts), max(ts) FROM alerts
    UNION ALL SELECT min(ts), max(ts) FROM dpd_snapshots
    UNION ALL SELECT min(ts), max(ts) FROM enterprise_health
    UNION ALL SELECT min(ts), max(ts) FROM model_metrics
    UNION ALL SELECT min(ts), max(ts) FROM repayments
    UNION ALL SELECT min(ts), max(ts) FROM limit_changes
    UNION ALL SELECT min(ts), max(ts) FROM enterprise_metrics
) WHERE hi > toDateTime64(0, 3)
"""


def data_range(client: Client) -> TimeRange | None:
    """The event-time span of the facts (the report never looks at the wall clock), or None if empty."""
    lo, hi = client.query(_RANGE_SQL).result_rows[0]
    if lo is None or hi is None or hi.year < 2000:
        return None
    lo = lo.replace(tzinfo=UTC) if lo.tzinfo is None else lo
    hi = hi.replace(tzinfo=UTC) if hi.tzinfo is None else hi
    return TimeRange(lo.replace(hour=0, minute=0, second=0, microsecond=0), hi + timedelta(seconds=1))


def _cell(v: Any) -> Any:
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, datetime):
        v = v.replace(tzinfo=UTC) if v.tzinfo is None else v
        return int(v.timestamp() * 1000)
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, list | tuple):
        return ", ".join(map(str, v))
    if isinstance(v, float) and v != v:
        return None
    return v


def collect(client: Client, tr: TimeRange) -> list[dict[str, Any]]:
    """Run every panel of every dashboard; returns JSON-ready sections with their panels' results."""
    sections = []
    for d in DASHBOARDS:
        model = dashboard_json(d)
        values = {v: ALL for v in ("channel", "segment", "industry")}
        panels = []
        for p, pj in zip(d.panels, model["panels"], strict=True):
            sql = expand(pj["targets"][0]["rawSql"], tr, values, dashboard_all_values(model))
            try:
                res = client.query(sql)
                cols, rows, err = list(res.column_names), [[_cell(c) for c in r] for r in res.result_rows], None
            except Exception as exc:  # noqa: BLE001 - one broken panel must not hide the others
                cols, rows, err = [], [], str(exc).splitlines()[0][:300]
            time_cols = [i for i, c in enumerate(cols) if rows and c in ("time", "last_ts", "updated", "last_event")]
            panels.append({"title": p.title, "kind": p.kind, "unit": p.unit or "", "description": p.description,
                           "columns": cols, "rows": rows, "time_cols": time_cols, "error": err,
                           "w": p.w})
        sections.append({"uid": d.uid, "title": d.title, "description": d.description, "panels": panels})
    return sections


_CSS = """
*{box-sizing:border-box}body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;
background:#111217;color:#d8d9da}header{padding:16px 24px;background:#181b1f;border-bottom:1px solid #2c3235}
h1{margin:0;font-size:20px}h2{font-size:17px;margin:24px 24px 4px}.sub{color:#8e8e8e;margin:0 24px 8px;
font-size:12px}.grid{display:grid;grid-template-columns:repeat(24,1fr);gap:8px;padding:0 24px}
.panel{background:#181b1f;border:1px solid #2c3235;border-radius:4px;padding:8px;min-width:0;overflow:hidden}
.panel h3{margin:0 0 6px;font-size:13px;font-weight:600}.stat{font-size:30px;font-weight:600;color:#73bf69;
text-align:center;padding:14px 0}.headline{display:flex;gap:8px;padding:12px 24px;flex-wrap:wrap}
.headline .panel{flex:1 1 150px}.headline .stat{font-size:24px;padding:6px 0}
table{border-collapse:collapse;width:100%;font-size:12px}th,td{padding:3px 6px;border-bottom:1px solid #2c3235;
text-align:left;white-space:nowrap}th{color:#8e8e8e}.scroll{max-height:260px;overflow:auto}
svg text{fill:#a0a0a0;font-size:10px}.legend{font-size:11px;display:flex;flex-wrap:wrap;gap:4px 10px}
.legend i{display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle}
.err{color:#f2495c;font-size:12px}footer{color:#777;padding:24px;font-size:12px}
"""

# Plain ES2015, no dependencies. Every chart element gets data-rendered="true" once drawn; errors land
# in window.__errors (also mirrored into #errors) so a headless browser can check the page.
_JS = r"""
window.__errors = window.__errors || [];
window.onerror = function (msg, src, line) { window.__errors.push(String(msg) + ' @' + line); };
(function () {
  var NS = 'http://www.w3.org/2000/svg';
  var COLORS = ['#73bf69','#f2cc0c','#5794f2','#ff9830','#f2495c','#b877d9','#8ab8ff','#96d98d','#ffb357','#ca95e5'];
  var data = JSON.parse(document.getElementById('report-data').textContent);
  function el(tag, attrs, parent) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) { e.setAttribute(k, attrs[k]); }
    if (parent) { parent.appendChild(e); }
    return e;
  }
  function fmt(v, unit) {
    if (v === null || v === undefined) { return '-'; }
    if (typeof v !== 'number') { return String(v); }
    if (unit === 'percentunit') { return (v * 100).toFixed(2) + '%'; }
    var a = Math.abs(v), s;
    if (a >= 1e9) { s = (v / 1e9).toFixed(2) + 'B'; }
    else if (a >= 1e6) { s = (v / 1e6).toFixed(2) + 'M'; }
    else if (a >= 1e4) { s = (v / 1e3).toFixed(1) + 'K'; }
    else if (Number.isInteger(v)) { s = String(v); }
    else { s = v.toFixed(a < 1 ? 4 : 2); }
    return (unit === 'currencyCNY' ? '\u00a5' : '') + s;
  }
  function fmtTime(ms) { return new Date(ms).toISOString().slice(0, 16).replace('T', ' '); }
  function seriesOf(p) {
    // long format (time, label, value) or wide format (time, v1, v2, ...)
    var cols = p.columns, rows = p.rows, out = {}, order = [];
    var labelIdx = -1;
    for (var i = 1; i < cols.length; i++) { if (rows.length && typeof rows[0][i] === 'string') { labelIdx = i; } }
    rows.forEach(function (r) {
      for (var j = 1; j < cols.length; j++) {
        if (j === labelIdx) { continue; }
        var name = labelIdx >= 0 ? (r[labelIdx] + (cols.length > 3 ? ' ' + cols[j] : '')) : cols[j];
        if (!out[name]) { out[name] = []; order.push(name); }
        out[name].push([r[0], Number(r[j])]);
      }
    });
    return order.map(function (n) { return {name: n, points: out[n]}; });
  }
  function axes(svg, W, H, m, x0, x1, y0, y1, unit, isTime) {
    el('line', {x1: m.l, y1: H - m.b, x2: W - m.r, y2: H - m.b, stroke: '#444'}, svg);
    for (var i = 0; i <= 4; i++) {
      var yv = y0 + (y1 - y0) * i / 4, y = H - m.b - (H - m.t - m.b) * i / 4;
      el('line', {x1: m.l, y1: y, x2: W - m.r, y2: y, stroke: '#2c3235'}, svg);
      el('text', {x: m.l - 4, y: y + 3, 'text-anchor': 'end'}, svg).textContent = fmt(yv, unit);
    }
    if (isTime) {
      for (var k = 0; k <= 3; k++) {
        var xv = x0 + (x1 - x0) * k / 3, x = m.l + (W - m.l - m.r) * k / 3;
        el('text', {x: x, y: H - 4, 'text-anchor': k === 0 ? 'start' : (k === 3 ? 'end' : 'middle')}, svg)
          .textContent = fmtTime(xv);
      }
    }
  }
  function legend(host, names) {
    var lg = document.createElement('div'); lg.className = 'legend';
    names.forEach(function (n, i) {
      var s = document.createElement('span');
      var sw = document.createElement('i'); sw.style.background = COLORS[i % COLORS.length];
      s.appendChild(sw); s.appendChild(document.createTextNode(n)); lg.appendChild(s);
    });
    host.appendChild(lg);
  }
  function lineChart(host, p) {
    var series = seriesOf(p), W = 560, H = 220, m = {l: 58, r: 10, t: 8, b: 20};
    var xs = [], ys = [0];
    series.forEach(function (s) { s.points.forEach(function (pt) { xs.push(pt[0]); ys.push(pt[1]); }); });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (x1 === x0) { x1 = x0 + 1; } if (y1 === y0) { y1 = y0 + 1; }
    var svg = el('svg', {viewBox: '0 0 ' + W + ' ' + H, width: '100%', role: 'img'}, host);
    axes(svg, W, H, m, x0, x1, y0, y1, p.unit, true);
    series.forEach(function (s, i) {
      var d = s.points.map(function (pt, j) {
        var x = m.l + (W - m.l - m.r) * (pt[0] - x0) / (x1 - x0);
        var y = H - m.b - (H - m.t - m.b) * (pt[1] - y0) / (y1 - y0);
        return (j ? 'L' : 'M') + x.toFixed(1) + ',' + y.toFixed(1);
      }).join('');
      el('path', {d: d, fill: 'none', stroke: COLORS[i % COLORS.length], 'stroke-width': 1.5,
                  'data-series': s.name}, svg);
    });
    legend(host, series.map(function (s) { return s.name; }));
  }
  function barChart(host, p) {
    var W = 560, H = 220, m = {l: 58, r: 10, t: 8, b: 34}, rows = p.rows;
    var vals = rows.map(function (r) { return Number(r[1]); });
    var y1 = Math.max.apply(null, vals.concat([1]));
    var svg = el('svg', {viewBox: '0 0 ' + W + ' ' + H, width: '100%', role: 'img'}, host);
    axes(svg, W, H, m, 0, 1, 0, y1, p.unit, false);
    var bw = (W - m.l - m.r) / Math.max(rows.length, 1);
    rows.forEach(function (r, i) {
      var h = (H - m.t - m.b) * vals[i] / y1, x = m.l + i * bw + bw * 0.15;
      el('rect', {x: x, y: H - m.b - h, width: bw * 0.7, height: h, fill: COLORS[i % COLORS.length]}, svg);
      el('text', {x: x + bw * 0.35, y: H - m.b + 12, 'text-anchor': 'middle'}, svg).textContent = String(r[0]);
      el('text', {x: x + bw * 0.35, y: H - m.b - h - 3, 'text-anchor': 'middle'}, svg).textContent = fmt(vals[i], p.unit);
    });
  }
  function table(host, p) {
    var wrap = document.createElement('div'); wrap.className = 'scroll';
    var t = document.createElement('table'), tr = document.createElement('tr');
    p.columns.forEach(function (c) { var th = document.createElement('th'); th.textContent = c; tr.appendChild(th); });
    t.appendChild(tr);
    p.rows.forEach(function (r) {
      var row = document.createElement('tr');
      r.forEach(function (v, i) {
        var td = document.createElement('td');
        td.textContent = p.time_cols.indexOf(i) >= 0 ? fmtTime(v) : fmt(v, '');
        row.appendChild(td);
      });
      t.appendChild(row);
    });
    wrap.appendChild(t); host.appendChild(wrap);
  }
  function stat(host, p) {
    var d = document.createElement('div'); d.className = 'stat';
    d.textContent = p.rows.length ? fmt(p.rows[0][0], p.unit) : '-';
    host.appendChild(d);
  }
  var DRAW = {stat: stat, timeseries: lineChart, barchart: barChart, table: table};
  function render(host, p) {
    var h = document.createElement('h3'); h.textContent = p.title; host.appendChild(h);
    if (p.description) { host.title = p.description; }
    try {
      if (p.error) { throw new Error('query failed: ' + p.error); }
      if (!p.rows.length) { var e = document.createElement('div'); e.textContent = 'no data'; host.appendChild(e); }
      else { DRAW[p.kind](host, p); }
      host.setAttribute('data-rendered', 'true');
    } catch (err) {
      window.__errors.push(p.title + ': ' + err.message);
      var m = document.createElement('div'); m.className = 'err'; m.textContent = err.message; host.appendChild(m);
      host.setAttribute('data-rendered', 'error');
    }
  }
  var head = document.getElementById('headline'), body = document.getElementById('sections');
  data.sections.forEach(function (s) {
    var h2 = document.createElement('h2'); h2.textContent = s.title; body.appendChild(h2);
    var sub = document.createElement('p'); sub.className = 'sub'; sub.textContent = s.description; body.appendChild(sub);
    var grid = document.createElement('div'); grid.className = 'grid'; body.appendChild(grid);
    s.panels.forEach(function (p) {
      var host = document.createElement('div'); host.className = 'panel chart';
      host.setAttribute('data-kind', p.kind); host.setAttribute('data-title', p.title);
      host.style.gridColumn = 'span ' + p.w;
      grid.appendChild(host); render(host, p);
      if (p.kind === 'stat') {
        var hh = document.createElement('div'); hh.className = 'panel chart headline-item';
        hh.setAttribute('data-kind', 'stat'); head.appendChild(hh); render(hh, p);
      }
    });
  });
  document.getElementById('errors').textContent = JSON.stringify(window.__errors);
  document.body.setAttribute('data-rendered', window.__errors.length ? 'errors' : 'all');
})();
"""


def render_html(sections: list[dict[str, Any]], tr: TimeRange | None, title: str = "riskmon report") -> str:
    """The complete page (data and renderer inline)."""
    payload = json.dumps({"sections": sections}, separators=(",", ":"), allow_nan=False)
    payload = payload.replace("</", "<\\/")
    span = (f"{tr.start:%Y-%m-%d %H:%M} - {tr.end:%Y-%m-%d %H:%M} UTC (event time)" if tr
            else "no data in ClickHouse")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        "<body data-rendered=\"pending\">"
        f"<header><h1>{html.escape(title)}</h1><div class=\"sub\" style=\"margin:4px 0 0\">"
        f"{html.escape(span)}</div></header>"
        "<div id=\"headline\" class=\"headline\"></div><div id=\"sections\"></div>"
        "<footer>Generated by <code>riskmon report</code> from the ClickHouse facts; the same SQL as the "
        "Grafana dashboards. Script errors: <span id=\"errors\">[]</span></footer>"
        f"<script id=\"report-data\" type=\"application/json\">{payload}</script>"
        f"<script>{_JS}</script></body></html>\n"
    )


def write_report(dsn: str, out: Path) -> Path:
    """Render every dashboard panel from the ClickHouse at ``dsn`` into one self-contained HTML file."""
    from sinks.clickhouse.client import connect
    from sinks.clickhouse.migrations import migrate

    client = connect(dsn)
    try:
        migrate(client)  # an empty store still gets a (blank) report instead of an error
        tr = data_range(client)
        sections = collect(client, tr) if tr else []
    finally:
        client.close()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(sections, tr))
    return out
