"""The HTML report renders every panel in headless Chromium, offline, without script errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from dashboards.catalog import DASHBOARDS
from dashboards.report import write_report
from sinks.clickhouse.client import connect
from sinks.clickhouse.migrations import migrate
from sinks.clickhouse.sample import load, sample_records

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def _chromium() -> str:
    if CHROMIUM:
        return CHROMIUM
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("chromium is required on CI (scripts/test must apt-get install chromium)")
    pytest.skip("chromium not installed (apt-get install chromium); required on CI")


def _run_chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=True)


class Charts(HTMLParser):
    """Collects the chart elements, their render state and the SVG marks inside them."""

    def __init__(self) -> None:
        super().__init__()
        self.body_state: str | None = None
        self.charts: list[dict] = []
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body_state = a.get("data-rendered")
        for attr in ("src", "href"):
            if a.get(attr) and re.match(r"^(https?:)?//", a[attr]):
                self.external.append(a[attr])
        if tag == "div" and "chart" in (a.get("class") or "").split():
            chart = {"kind": a.get("data-kind"), "title": a.get("data-title"),
                     "state": a.get("data-rendered"), "marks": 0, "cells": 0}
            self.charts.append(chart)
        if self.charts and tag in ("path", "rect"):
            self.charts[-1]["marks"] += 1
        if self.charts and tag == "td":
            self.charts[-1]["cells"] += 1


@pytest.fixture(scope="module")
def report(tmp_path_factory, request):
    """The report rendered from a chdb loaded with the analytics records (swap point as in the panel test)."""
    try:
        records = request.getfixturevalue("replay_analytics_records")
    except pytest.FixtureLookupError:
        records = sample_records()
    base = tmp_path_factory.mktemp("report")
    dsn = f"chdb://{base / 'ch'}"
    client = connect(dsn)
    migrate(client)
    load(client, records)
    client.close()
    return write_report(dsn, base / "out" / "report.html")


def test_report_is_self_contained(report: Path):
    text = report.read_text()
    assert "<script src" not in text and "<link" not in text and "@import" not in text
    data = json.loads(re.search(r'<script id="report-data" type="application/json">(.*?)</script>', text,
                                re.S).group(1).replace("<\\/", "</"))
    titles = [[p["title"] for p in s["panels"]] for s in data["sections"]]
    assert titles == [[p.title for p in d.panels] for d in DASHBOARDS]
    assert all(p["error"] is None and p["rows"] for s in data["sections"] for p in s["panels"])


def test_every_chart_renders_in_headless_chromium(report: Path, tmp_path: Path):
    url = report.resolve().as_uri()
    dom = _run_chromium(["--dump-dom", url], tmp_path / "profile-dom")
    assert "Uncaught" not in dom.stderr, dom.stderr
    page = Charts()
    page.feed(dom.stdout)
    assert page.external == []
    errors = re.search(r'<span id="errors">(.*?)</span>', dom.stdout, re.S).group(1)
    assert json.loads(errors) == []
    assert page.body_state == "all"
    n_panels = sum(len(d.panels) for d in DASHBOARDS)
    n_stats = sum(p.kind == "stat" for d in DASHBOARDS for p in d.panels)
    assert len(page.charts) == n_panels + n_stats  # each stat also appears in the headline strip
    for c in page.charts:
        assert c["state"] == "true", c
        if c["kind"] in ("timeseries", "barchart"):
            assert c["marks"] > 0, c
        if c["kind"] == "table":
            assert c["cells"] > 0, c
    shot = tmp_path / "report.png"
    _run_chromium([f"--screenshot={shot}", "--window-size=1400,2400", url], tmp_path / "profile-shot")
    assert shot.stat().st_size > 50_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_empty_store_gives_a_blank_report(tmp_path: Path):
    out = write_report(f"chdb://{tmp_path / 'empty'}", tmp_path / "r.html")
    assert "no data in ClickHouse" in out.read_text()
