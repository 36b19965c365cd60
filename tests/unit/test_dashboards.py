"""Dashboards as code: JSON models against the schema, macro expansion, provisioning, push to Grafana."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import pytest
import yaml

from dashboards.catalog import DASHBOARDS
from dashboards.macros import ALL, MacroError, TimeRange, dashboard_all_values, expand
from dashboards.model import DATASOURCE_TYPE, DATASOURCE_UID, SCHEMA_VERSION
from dashboards.publish import SCHEMA_PATH, all_dashboards, export, push, validate

ROOT = Path(__file__).resolve().parents[2]
TR = TimeRange(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC), interval_s=300)


def test_four_dashboards_with_stable_unique_uids():
    titles = [d["title"] for d in all_dashboards()]
    assert titles == ["Risk ops overview", "Collections and delinquency", "Enterprise early warning",
                      "Model health"]
    uids = [d["uid"] for d in all_dashboards()]
    assert len(set(uids)) == 4 and uids == [d["uid"] for d in all_dashboards()]


@pytest.mark.parametrize("dash", all_dashboards(), ids=lambda d: d["uid"])
def test_every_dashboard_matches_the_schema(dash):
    validate(dash)
    assert dash["schemaVersion"] == SCHEMA_VERSION
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    cells = set()  # panels tile the 24-column grid without overlapping
    for p in dash["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, p["title"]
                cells.add((x, y))
        assert p["datasource"]["type"] == DATASOURCE_TYPE
        sql = p["targets"][0]["rawSql"]
        assert "$__timeFilter(ts)" in sql or "$__toTime" in sql, p["title"]
        if p["type"] == "timeseries":
            assert "$__timeInterval(ts) AS time" in sql and p["targets"][0]["queryType"] == "timeSeries"
    names = [v["name"] for v in dash["templating"]["list"]]
    assert names[0] == "datasource"
    used = {n for n in names[1:] if any(f"${{{n}:" in p["targets"][0]["rawSql"] for p in dash["panels"])}
    assert used == set(names[1:])  # every filter variable is used by some panel


def test_schema_rejects_what_grafana_would_not_load():
    dash = all_dashboards()[0]
    bad_grid = json.loads(json.dumps(dash))
    bad_grid["panels"][0]["gridPos"]["w"] = 30
    no_uid = {k: v for k, v in dash.items() if k != "uid"}
    wrong_ds = json.loads(json.dumps(dash))
    wrong_ds["panels"][1]["targets"][0]["datasource"]["type"] = "prometheus"
    typo = {**dash, "panel": []}
    for broken in (bad_grid, no_uid, wrong_ds, typo):
        with pytest.raises(jsonschema.ValidationError):
            validate(broken)
    json.loads(SCHEMA_PATH.read_text())


def test_macros_expand_like_the_plugin():
    sql = "SELECT $__timeInterval(ts) AS time FROM t WHERE $__timeFilter(ts) AND x <= $__toTime AND $__interval_s > 0"
    out = expand(sql, TR)
    assert out == ("SELECT toStartOfInterval(toDateTime(ts), INTERVAL 300 second) AS time FROM t WHERE "
                   "ts >= toDateTime(1772323200) AND ts <= toDateTime(1772409600) AND x <= toDateTime(1772409600) "
                   "AND 300 > 0")
    assert expand("$__timeFilter_ms(ts)", TR) == (
        "ts >= fromUnixTimestamp64Milli(1772323200000) AND ts <= fromUnixTimestamp64Milli(1772409600000)")
    assert expand("$__dateFilter(d)", TR) == "d >= toDate('2026-03-01') AND d <= toDate('2026-03-02')"
    with pytest.raises(MacroError):
        expand("$__timeFilter()", TR)
    with pytest.raises(MacroError):
        expand("$__nope(ts)", TR)
    auto = TimeRange(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 15, tzinfo=UTC))
    assert auto.interval == 7200  # 14 days / 200 points -> 6048 s -> next friendly step


def test_template_variables_follow_grafana_formatting():
    sql = "channel IN (${channel:singlequote}) OR '__all' IN (${channel:singlequote}) AND g = $grade"
    assert expand(sql, TR, {"channel": ["app", "o'neil"], "grade": "A"}) == (
        "channel IN ('app','o\\'neil') OR '__all' IN ('app','o\\'neil') AND g = 'A'")
    assert expand(sql, TR, {"channel": ALL, "grade": "A"}, {"channel": "'__all'"}).startswith(
        "channel IN ('__all') OR '__all' IN ('__all')")
    with pytest.raises(MacroError, match="unknown template variable"):
        expand("$missing", TR)
    assert dashboard_all_values(all_dashboards()[0]) == {"channel": "'__all'", "segment": "'__all'"}


def test_provisioning_files_point_at_the_read_only_user_and_dashboard_dir():
    ds = yaml.safe_load((ROOT / "dashboards/provisioning/datasources/clickhouse.yaml").read_text())
    (src,) = ds["datasources"]
    assert src["type"] == DATASOURCE_TYPE and src["uid"] == DATASOURCE_UID
    assert src["jsonData"]["username"] == "grafana_ro"
    assert src["secureJsonData"]["password"].startswith("${")  # from the environment, not the file
    prov = yaml.safe_load((ROOT / "dashboards/provisioning/dashboards/riskmon.yaml").read_text())
    (provider,) = prov["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_export_writes_loadable_json(tmp_path):
    paths = export(tmp_path / "out")
    assert sorted(p.name for p in paths) == sorted(f"{d.uid}.json" for d in DASHBOARDS)
    for p in paths:
        validate(json.loads(p.read_text()))


class FakeGrafana(BaseHTTPRequestHandler):
    """A recording HTTP server speaking the few Grafana API calls `push` makes (a real Grafana cannot run here)."""

    requests: list[tuple[str, str, dict | None, str | None]] = []
    folders: dict[str, dict] = {}
    dashboards: dict[str, dict] = {}

    def log_message(self, *args) -> None:  # quiet
        pass

    def _reply(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict | None:
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n)) if n else None

    def _record(self) -> dict | None:
        body = self._body()
        self.requests.append((self.command, self.path, body, self.headers.get("Authorization")))
        return body

    def do_GET(self) -> None:
        self._record()
        uid = self.path.rsplit("/", 1)[-1]
        if self.path.startswith("/api/folders/") and uid in self.folders:
            return self._reply(200, self.folders[uid])
        return self._reply(404, {"message": "folder not found"})

    def do_POST(self) -> None:
        body = self._record()
        if self.path == "/api/folders":
            if body["uid"] in self.folders:
                return self._reply(409, {"message": "exists"})
            self.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"], "version": 1}
            return self._reply(200, self.folders[body["uid"]])
        if self.path == "/api/dashboards/db":
            dash = body["dashboard"]
            prev = self.dashboards.get(dash["uid"])
            if prev and not body.get("overwrite"):
                return self._reply(412, {"status": "version-mismatch"})
            version = (prev or {}).get("version", 0) + 1
            self.dashboards[dash["uid"]] = {"dashboard": dash, "folderUid": body["folderUid"], "version": version}
            return self._reply(200, {"status": "success", "uid": dash["uid"], "version": version,
                                     "url": f"/d/{dash['uid']}"})
        return self._reply(404, {"message": "not found"})

    def do_PUT(self) -> None:
        body = self._record()
        uid = self.path.rsplit("/", 1)[-1]
        if uid not in self.folders:
            return self._reply(404, {"message": "folder not found"})
        self.folders[uid].update(title=body["title"], version=self.folders[uid]["version"] + 1)
        return self._reply(200, self.folders[uid])


def test_push_upserts_folder_and_dashboards_idempotently():
    FakeGrafana.requests, FakeGrafana.folders, FakeGrafana.dashboards = [], {}, {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGrafana)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        first = push(url, "glsa_test_token")
        second = push(url, "glsa_test_token")
    finally:
        server.shutdown()
        server.server_close()
    assert [r["status"] for r in first + second] == ["success"] * 8
    assert set(FakeGrafana.dashboards) == {d.uid for d in DASHBOARDS}
    assert all(v["version"] == 2 and v["folderUid"] == "riskmon" for v in FakeGrafana.dashboards.values())
    assert list(FakeGrafana.folders) == ["riskmon"]
    calls = [(m, p) for m, p, _, _ in FakeGrafana.requests]
    assert calls.count(("POST", "/api/folders")) == 1 and calls.count(("PUT", "/api/folders/riskmon")) == 1
    posts = [b for m, p, b, _ in FakeGrafana.requests if p == "/api/dashboards/db"]
    assert len(posts) == 8 and all(b["overwrite"] is True and b["dashboard"]["id"] is None for b in posts)
    assert {a for *_, a in FakeGrafana.requests} == {"Bearer glsa_test_token"}
