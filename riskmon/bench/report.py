"""The bench report as rich tables (the JSON file holds the same numbers)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table

from riskmon.bench.latency import WINDOW_S

STAGE_TITLES = {
    "a_raw": "(a) raw aiokafka + orjson",
    "b_naive": "(b) naive Faust, 1 event at a time",
    "c_pipeline_1": "(c) riskmon, 1 worker",
    "c_pair_compiled": "(c') 1 worker compiled, alongside:",
    "c_pair_pure": "(c') 1 worker pure Python",
    "d_pipeline_2": "(d) riskmon, 2 workers",
}


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def render(report: dict[str, Any]) -> Group:
    """Throughput, ratios, latency, Redis, memory and targets tables."""
    thr = Table(title="Throughput (same data, same broker)")
    for col in ("stage", "events", "seconds", "events/s", "µs CPU/msg", "CPU s (who)", "RSS MiB (peak)"):
        thr.add_column(col, justify="right" if col not in ("stage", "CPU s (who)") else "left")
    for key, title in STAGE_TITLES.items():
        st = report.get("stages", {}).get(key)
        if not st:
            continue
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in (st.get("cpu_s") or {}).items())
        rss = ", ".join(f"{v['peak_rss_mb']:.0f}" for v in (st.get("rss") or {}).values())
        thr.add_row(title, _fmt(st.get("events")), _fmt(st.get("seconds")), _fmt(st.get("events_per_s")),
                    _fmt(st.get("worker_us_per_msg")), cpu or "-", rss or "-")
    ratios = report.get("ratios", {})
    thr.caption = "  ".join(f"{k.replace('_over_', '/')} = {_fmt(v)}" for k, v in ratios.items())

    other = Table(title="Latency, Redis, memory")
    other.add_column("measure")
    other.add_column("value", justify="right")
    floor = report.get("latency_floor")
    if floor:
        _floor_rows(other, floor)
    lat = report.get("latency")
    if lat:
        _latency_head(other, lat, f"(e) event -> decision at {lat['offered_rate']:.0f}/s (achieved "
                      f"{lat['achieved_rate']:.0f}/s, {lat.get('workers', 1)} worker(s), "
                      f"{lat.get('producer', 'librdkafka')} producer)", " (the book ages as it runs)")
        if lat.get("worker_us_per_msg"):
            other.add_row("  messages the workers committed meanwhile, their CPU per message",
                          f"{lat['worker_msgs_while_offered']:,}, {lat['worker_us_per_msg']} µs")
        wb = lat.get("worker_breakdown") or {}
        if wb.get("samples"):
            other.add_row("  in the worker, p50 / p99: broker -> worker, merge wait, apply",
                          f"{wb['in_p50_ms']} / {wb['in_p99_ms']}, {wb['wait_p50_ms']} / {wb['wait_p99_ms']}, "
                          f"{wb['apply_p50_ms']} / {wb['apply_p99_ms']} ms")
            other.add_row("  full GC pauses during the stage", f"{wb['gc2_pauses']}, max {wb['gc2_max_ms']} ms")
        if wb.get("batches"):
            other.add_row(f"  per batch ({wb['batches']:,}; p50 {wb['batch_events_p50']:.0f} events, "
                          f"{wb['batch_users_p50']:.0f} users, {wb['batch_users_from_redis_p50']:.0f} from Redis; "
                          f"{wb.get('takes_held_to_fill', 0):,} takes held to fill a batch), "
                          "p50 / p99: state read, engine, publish + ack, commit",
                          f"{wb['batch_load_p50_ms']} / {wb['batch_load_p99_ms']}, "
                          f"{wb['batch_engine_p50_ms']} / {wb['batch_engine_p99_ms']}, "
                          f"{wb['batch_publish_p50_ms']} / {wb['batch_publish_p99_ms']}, "
                          f"{wb['batch_commit_p50_ms']} / {wb['batch_commit_p99_ms']} ms")
        if wb.get("batches_with_redis_read"):
            other.add_row(f"  of the state read, the Redis round trip alone ({wb['batches_with_redis_read']:,} "
                          "batches read from Redis), p50 / p99",
                          f"{wb['batch_redis_round_trip_p50_ms']} / {wb['batch_redis_round_trip_p99_ms']} ms")
    rt = report.get("redis_round_trips")
    if rt:
        other.add_row(f"AccountStore.load, {rt['batch']} cold users", f"p50 {rt['load_p50_ms']} ms, p99 {rt['load_p99_ms']} ms")
        other.add_row(f"  of which the Redis round trip ({rt['batch']} / {rt['fetch_small_batch']} users)",
                      f"p50 {rt['fetch_p50_ms']} / {rt['fetch_small_p50_ms']} ms, "
                      f"p99 {rt['fetch_p99_ms']} / {rt['fetch_small_p99_ms']} ms")
        if "fetch_small_layout_1_p50_ms" in rt:
            other.add_row(f"  the same {rt['fetch_small_batch']}-user reads ({rt['fetch_small_reads']:,}) in layout 1 "
                          "(Lua HMGET; MGET now), alternating",
                          f"p50 {rt['fetch_small_layout_1_p50_ms']} ms, p99 {rt['fetch_small_layout_1_p99_ms']} ms "
                          f"(x{rt['layout_1_over_2_p50']} the MGET's p50)")
        other.add_row(f"AccountStore.commit, {rt['batch']} users", f"p50 {rt['commit_p50_ms']} ms, p99 {rt['commit_p99_ms']} ms")
        other.add_row("mean state blob", f"{rt['mean_state_bytes']:.0f} bytes")
    c = report.get("stages", {}).get("c_pipeline_1", {}).get("redis")
    if c:
        other.add_row(f"Redis memory per 1k users ({c['users']:,} users)", f"{c['mb_per_1k_users']:.2f} MiB")
    mem = report.get("memory")
    if mem:
        rss = max(v["peak_rss_mb"] for v in mem["rss"].values())
        other.add_row(f"(g) 1 worker owning {mem['users']:,} users ({mem['users_with_state']:,} with state)",
                      f"peak RSS {rss:,.0f} MiB, {mem['events_per_s']:,.0f} events/s, "
                      f"{mem['worker_us_per_msg']} µs CPU per message, Redis {mem['redis_mb_per_1k_users']:.2f} MiB "
                      "per 1k users")

    tg = Table(title="Targets", caption="floor (e0): the same measure with workers that do only the plumbing "
                                         "(no riskmon work), same rate, same run" if "latency_floor" in report else None)
    for col in ("target", "wanted", "measured", "met", "floor (e0)"):
        tg.add_column(col)
    for name, t in report.get("targets", {}).items():
        met = {True: "[green]yes[/]", False: "[red]no[/]", None: "-"}[t["met"]]
        tg.add_row(name, t["target"], _fmt(t["value"]), met, _fmt(t.get("floor")))
    return Group(thr, other, tg)


def _floor_rows(table: Table, floor: dict[str, Any]) -> None:
    """Stage (e0)'s rows: what the harness measures when the workers do only the plumbing."""
    _latency_head(table, floor, f"(e0) floor: workers with the plumbing only, at {floor['offered_rate']:.0f}/s "
                  f"(achieved {floor['achieved_rate']:.0f}/s, {floor.get('workers', 1)} worker(s))", "")
    if floor.get("worker_us_per_msg"):
        table.add_row("  the workers' CPU per message (Faust, aiokafka, the event loop, 2 Redis + 1 publish round "
                      "trips per batch)", f"{floor['worker_us_per_msg']} µs")
    wb = floor.get("worker_breakdown") or {}
    if wb.get("batches"):
        table.add_row(f"  per batch ({wb['batches']:,}; p50 {wb['batch_events_p50']:.0f} events), p50 / p99: "
                      "broker -> worker, Redis read, publish + ack",
                      f"{wb['in_p50_ms']} / {wb['in_p99_ms']}, {wb['batch_load_p50_ms']} / {wb['batch_load_p99_ms']}, "
                      f"{wb['batch_publish_p50_ms']} / {wb['batch_publish_p99_ms']} ms")


def _latency_head(table: Table, lat: dict[str, Any], title: str, window_note: str) -> None:
    """The rows (e) and (e0) share: p50 / p99 / max, the same per window of sending, the CPU split."""
    table.add_row(title, f"p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms "
                         f"({lat['decisions_measured']:,} decisions)")
    if lat.get("by_window"):
        table.add_row(f"  p50 / p99 by {WINDOW_S:g} s of sending{window_note}",
                      ", ".join(f"{w['p50_ms']:.0f}/{w['p99_ms']:.0f}" for w in lat["by_window"]) + " ms")
    if lat.get("cpu_s"):
        table.add_row(f"  CPU s while offered ({lat['cpu_share_of_machine']:.0%} of the machine)",
                      ", ".join(f"{k} {v:.1f}" for k, v in lat["cpu_s"].items()))
