"""Account-state layouts on a real redis-server: the worker's start check, `riskmon state migrate`, and
the layout-2 store (MGET reads, GETRANGE compare-and-set) working on migrated states."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys

import orjson
import pytest
import redis

from riskmon.account import AccountState
from riskmon.cli.main import main as cli
from riskmon.state.accounts import AccountStore, scan_states, split_stored
from riskmon.state.layout import (
    CURRENT_LAYOUT,
    LAYOUT_KEY,
    MIGRATE_LUA,
    LayoutError,
    check_layout,
    count_old,
    ensure_layout,
    migrate,
)
from riskmon.state.redis_client import connect as async_connect
from streams.worker import check_state_layout


def _purchase_event(user: str) -> object:
    """A Faust-like event of one valid purchase (what the agent hands the runtime)."""
    from types import SimpleNamespace

    value = orjson.dumps({"event_id": f"p-{user}", "ts": "2026-03-01T02:00:00Z", "user_id": user,
                          "order_id": f"o-{user}", "amount": "120.50", "merchant_id": "m1",
                          "category": "digital", "channel": "app", "installments": 3})
    msg = SimpleNamespace(topic="purchases", value=value, partition=0, offset=0, timestamp=1772330400.0,
                          incref=lambda: None)
    return SimpleNamespace(message=msg, ack=lambda: None)


def _state(i: int) -> AccountState:
    st = AccountState(f"u{i}")
    st.credit_limit = 100_000 + i  # fen: exact money survives the move byte for byte
    st.grade = "B"
    return st


def _write_layout_1(r: redis.Redis, n: int, *, ttl_s: int = 3600) -> dict[str, tuple[int, bytes]]:
    """What a layout-1 worker's commit wrote: HSET v, s and EXPIRE per user."""
    written = {}
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        blob, version = _state(i).to_bytes(), 3 + i % 5
        pipe.hset(f"rm:u:u{i}", mapping={"v": version, "s": blob})
        pipe.expire(f"rm:u:u{i}", ttl_s)
        written[f"u{i}"] = (version, blob)
    pipe.execute()
    return written


@pytest.fixture
def r(clean_redis_url: str):
    client = redis.Redis.from_url(clean_redis_url)
    yield client
    client.close()


def test_fresh_redis_is_marked_and_another_recorded_layout_is_refused(r: redis.Redis) -> None:
    assert r.get(LAYOUT_KEY) is None
    assert check_layout(r) == CURRENT_LAYOUT
    assert int(r.get(LAYOUT_KEY)) == CURRENT_LAYOUT
    assert check_layout(r) == CURRENT_LAYOUT  # marked: no scan, same answer
    r.set(LAYOUT_KEY, 3)
    with pytest.raises(LayoutError, match="layout 3"):
        check_layout(r)


def test_layout_1_data_stops_a_worker_until_migrated(r: redis.Redis, clean_redis_url: str) -> None:
    _write_layout_1(r, 7)
    with pytest.raises(LayoutError, match="riskmon state migrate"):
        check_layout(r)
    assert r.get(LAYOUT_KEY) is None  # not marked: the next start checks again
    with pytest.raises(SystemExit, match="riskmon state migrate"):
        check_state_layout(clean_redis_url)
    # the real command: it exits before it touches Kafka, with the reason on stderr
    env = {**os.environ, "RISKMON_REDIS_URL": clean_redis_url, "RISKMON_BROKER_URL": "kafka://127.0.0.1:1"}
    proc = subprocess.run([sys.executable, "-m", "riskmon.cli.main", "worker"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0
    assert "layout 1" in proc.stderr and "riskmon state migrate" in proc.stderr
    migrate(r)
    assert check_state_layout(clean_redis_url) is True  # now it starts


def test_a_worker_started_while_redis_was_down_checks_before_its_first_state_read(
        r: redis.Redis, clean_redis_url: str) -> None:
    """The start check could not run (Redis down, so the worker started): the runtime's first batch checks,
    publishes nothing computed on states it cannot read, and tells the worker to stop."""
    from riskmon.config import Settings
    from riskmon.policy import load_policy
    from streams.consumer_credit import ConsumerCreditRuntime

    assert check_state_layout("redis://127.0.0.1:1/0") is False  # unreachable: start, check later
    _write_layout_1(r, 3)
    published: list = []
    fatal: list[BaseException] = []

    async def publish(records: list) -> int:
        published.extend(records)
        return len(records)

    async def run() -> None:
        client = async_connect(clean_redis_url)
        settings = Settings(redis_url=clean_redis_url, broker_url=None, clickhouse_dsn=None)
        runtime = ConsumerCreditRuntime(settings, load_policy(settings.policy_path), client, "w-test",
                                        publish=publish, assigned_partitions=lambda: [0],
                                        on_fatal=fatal.append)
        try:
            assert not runtime.layout_checked
            with pytest.raises(LayoutError, match="layout 1"):
                await runtime.handle([_purchase_event("u0")])
        finally:
            await client.aclose()
        assert [type(e) for e in fatal] == [LayoutError]
        assert published == []  # no decision on an account it could not read
        assert r.type("rm:u:u0") == b"hash" and r.get(LAYOUT_KEY) is None  # nothing written

    asyncio.run(run())
    migrate(r)

    async def after() -> None:
        client = async_connect(clean_redis_url)
        try:
            assert await ensure_layout(client) == CURRENT_LAYOUT
        finally:
            await client.aclose()

    asyncio.run(after())


def test_migrate_keeps_versions_blobs_and_ttls_and_is_idempotent(r: redis.Redis, clean_redis_url: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    written = _write_layout_1(r, 1203, ttl_s=5000)
    r.set("rm:u:u9999", b"4|" + _state(9999).to_bytes())  # already layout 2 (an interrupted run): left alone
    assert count_old(r) == 1203
    assert cli(["state", "--redis-url", clean_redis_url, "layout"]) == 1
    assert "layout-1 account hashes: 1203" in capsys.readouterr().out

    assert cli(["state", "--redis-url", clean_redis_url, "migrate", "--batch", "500"]) == 0
    assert "converted 1203 account states" in capsys.readouterr().out
    assert count_old(r) == 0 and int(r.get(LAYOUT_KEY)) == CURRENT_LAYOUT
    for user, (version, blob) in written.items():
        raw = r.get(f"rm:u:{user}")
        assert split_stored(raw) == (version, blob)
        assert 4900 < r.ttl(f"rm:u:{user}") <= 5000
    assert split_stored(r.get("rm:u:u9999"))[0] == 4
    assert {st.user_id for st in scan_states(r, chunk=100)} == set(written) | {"u9999"}

    assert migrate(r) == 0  # a rerun: nothing left
    assert cli(["state", "--redis-url", clean_redis_url, "layout"]) == 0


def test_the_store_reads_and_compare_and_sets_migrated_states(r: redis.Redis, clean_redis_url: str) -> None:
    written = _write_layout_1(r, 40)
    migrate(r)

    async def run() -> None:
        client = async_connect(clean_redis_url)
        try:
            store = AccountStore(client, ttl_s=3600)
            states = await store.load({f"u{i}" for i in range(45)})  # 40 stored, 5 new
            assert store.round_trips == 1 and store.last_fetched == 45
            for user, (version, _blob) in written.items():
                assert states[user].version == version
                assert states[user].credit_limit == _state(int(user[1:])).credit_limit
            assert states["u44"].version == 0 and states["u44"].credit_limit == 0
            states["u1"].credit_limit += 500
            assert (await store.commit([states["u1"], states["u44"]], [], 0, {})).ok
            assert split_stored(r.get("rm:u:u1"))[0] == written["u1"][0] + 1
            assert split_stored(r.get("rm:u:u44"))[0] == 1 and r.ttl("rm:u:u44") > 3500
            # another worker's store with the old version: the compare-and-set refuses it
            stale = AccountStore(client, ttl_s=3600)
            old = AccountState.from_bytes(written["u1"][1], written["u1"][0])
            res = await stale.commit([old], [], 0, {})
            assert not res.ok and res.conflicts == ["u1"]
            fresh = await AccountStore(client, ttl_s=3600).load({"u1"})
            assert fresh["u1"].credit_limit == _state(1).credit_limit + 500
        finally:
            await client.aclose()

    asyncio.run(run())


def test_the_migration_script_skips_keys_that_are_not_hashes(r: redis.Redis) -> None:
    _write_layout_1(r, 2)
    r.set("rm:u:u5", b"9|{}")
    converted = r.register_script(MIGRATE_LUA)(keys=["rm:u:u0", "rm:u:u5", "rm:u:gone"])
    assert converted == 1
    assert r.type("rm:u:u1") == b"hash" and r.get("rm:u:u5") == b"9|{}" and not r.exists("rm:u:gone")


def test_split_stored_reads_the_version_prefix_only() -> None:
    assert split_stored(None) == (0, None)
    assert split_stored(b"12|{\"a\":\"x|y\"}") == (12, b"{\"a\":\"x|y\"}")  # a '|' in the blob is the blob's
    with pytest.raises(ValueError):
        split_stored(b"{\"not\":\"layout 2\"}")


def test_bench_f_reads_both_layouts_side_by_side_and_leaves_no_scratch_keys(r: redis.Redis,
                                                                           clean_redis_url: str) -> None:
    from riskmon.bench.redis_reads import redis_round_trips

    _write_layout_1(r, 80)
    migrate(r)
    before = {k: r.get(k) for k in r.scan_iter("rm:u:*")}
    thresholds = gc.get_threshold()
    res = redis_round_trips(clean_redis_url, batch=20, rounds=4)
    assert gc.get_threshold() == thresholds and gc.get_freeze_count() == 0  # the worker's GC settings: undone
    assert res["fetch_small_batch"] == 50 and res["fetch_small_reads"] == 4 * 10
    assert res["fetch_small_layout_1_p99_ms"] >= res["fetch_small_layout_1_p50_ms"] > 0
    assert res["layout_1_over_2_p50"] > 0
    assert not list(r.scan_iter("rm:bench:*"))  # the layout-1 copies are deleted
    assert {k for k in r.scan_iter("rm:u:*")} == set(before)  # the states themselves are all still there


def test_the_cli_says_when_it_cannot_reach_redis(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="cannot reach Redis at redis://127.0.0.1:1/0"):
        cli(["state", "--redis-url", "redis://127.0.0.1:1/0", "layout"])
