"""`riskmon hooks test|list` against a real local receiver (the receiver runs in a background thread)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import yaml
from aiohttp import web
from hook_receivers import SECRET, Receiver, start_receiver

from riskmon.cli.main import main
from sinks.hooks.schemas import ALERTMANAGER_ALERTS

pytestmark = pytest.mark.integration


@pytest.fixture
def threaded_receiver() -> Iterator[Receiver]:
    """A real receiver on its own event loop thread, so the CLI can use asyncio.run in the test thread."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Receiver] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        holder["rx"] = loop.run_until_complete(
            start_receiver(respond=lambda r: web.Response(status=202 if r.signature_ok else 401, text="accepted")))
        ready.set()
        loop.run_forever()

    th = threading.Thread(target=run, daemon=True)
    th.start()
    assert ready.wait(30)
    yield holder["rx"]
    asyncio.run_coroutine_threadsafe(holder["rx"].stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    th.join(30)


@pytest.fixture
def hook_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threaded_receiver: Receiver) -> Receiver:
    policy = {"hooks": {
        "destinations": {"wh": {"type": "webhook"}, "am": {"type": "alertmanager"},
                         "off": {"type": "slack"}},
        "routes": [{"kinds": "*", "to": ["wh", "am", "off"]}],
    }}
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    monkeypatch.setenv("RISKMON_POLICY_FILE", str(path))
    monkeypatch.setenv("RISKMON_HOOK_SECRET", SECRET)
    monkeypatch.setenv("RISKMON_HOOK_WH_URL", threaded_receiver.url + "/wh")
    monkeypatch.setenv("RISKMON_HOOK_AM_URL", threaded_receiver.url)
    monkeypatch.delenv("RISKMON_HOOK_OFF_URL", raising=False)
    return threaded_receiver


def test_hooks_test_sends_signed_alert_and_prints_status(hook_env: Receiver, capsys: pytest.CaptureFixture) -> None:
    assert main(["hooks", "test", "wh", "--kind", "delinquency_m1", "--severity", "critical"]) == 0
    out = capsys.readouterr().out
    assert "HTTP 202" in out and " ms " in out and "OK" in out
    [req] = hook_env.requests
    assert req.signature_ok and req.path == "/wh"
    body = req.json
    assert body["kind"] == "delinquency_m1" and body["severity"] == "critical"
    assert body["subject_id"].startswith("u_"), "test alerts are masked like real ones"


def test_hooks_test_alertmanager_resolve(hook_env: Receiver, capsys: pytest.CaptureFixture) -> None:
    assert main(["hooks", "test", "am", "--resolve"]) == 0
    out = capsys.readouterr().out
    assert out.count("HTTP 202") == 2
    firing, resolved = (r.json for r in hook_env.requests)
    for b in (firing, resolved):
        jsonschema.validate(b, ALERTMANAGER_ALERTS)
    assert resolved[0]["labels"] == firing[0]["labels"]


def test_hooks_test_reports_failure_and_disabled(hook_env: Receiver, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("RISKMON_HOOK_SECRET", "wrong-secret")  # receiver answers 401 to bad signatures
    assert main(["hooks", "test", "wh"]) == 1
    assert "HTTP 401" in capsys.readouterr().out
    assert main(["hooks", "test", "off"]) == 2
    assert "disabled" in capsys.readouterr().err
    assert main(["hooks", "test", "nope"]) == 2


def test_hooks_list_json(hook_env: Receiver, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["hooks", "list", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    enabled = {d["name"]: d["enabled"] for d in doc["destinations"]}
    assert enabled == {"wh": True, "am": True, "off": False}
    assert all("/wh" not in d["url"] for d in doc["destinations"])  # paths (tokens) are not printed
    assert doc["routes"][0]["to"] == ["wh", "am", "off"]
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps table cells to the terminal width
    assert main(["hooks", "list"]) == 0
    assert "RISKMON_HOOK_OFF_URL" in capsys.readouterr().out


def test_hooks_dead_lists_dead_letters_without_payload_by_default(
    clean_redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import orjson
    import redis

    record = {"dest": "wh", "action": "notify", "dedup_key": "collector_page:user_9:ep1", "error": "HTTP 503",
              "attempts": 8, "alert": {"subject_id": "user_9"}}
    redis.Redis.from_url(clean_redis_url).lpush("hooks:dead", orjson.dumps(record))
    monkeypatch.setenv("RISKMON_REDIS_URL", clean_redis_url)
    assert main(["hooks", "dead"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line) == {k: v for k, v in record.items() if k != "alert"}
    assert main(["hooks", "dead", "--full"]) == 0
    assert json.loads(capsys.readouterr().out)["alert"] == {"subject_id": "user_9"}
    monkeypatch.delenv("RISKMON_REDIS_URL")
    assert main(["hooks", "dead"]) == 2
