"""The account state blob: exact round trip, compact pending labels, older blobs still readable."""

from __future__ import annotations

import orjson

from riskmon.account import AccountState


def _state_with_labels(n: int) -> AccountState:
    st = AccountState("u1")
    for i in range(n):
        x = {"utilisation": 0.1 * i, "limit": 5000.0, "dpd_now": 0.0, "anomaly": 0.123456789 + i}
        st.labels.append([f"p{i}", 1_000 * i, x, 0.01 * i, 0.02, 0])
    return st


def test_labels_round_trip_exactly_with_feature_names_written_once() -> None:
    st = _state_with_labels(10)
    blob = st.to_bytes()
    back = AccountState.from_bytes(blob)
    assert back.labels == st.labels and back.to_bytes() == blob
    assert [list(lab[2]) for lab in back.labels] == [list(lab[2]) for lab in st.labels]  # key order kept
    assert blob.count(b'"utilisation"') == 1


def test_a_blob_with_labels_in_the_plain_form_still_reads() -> None:
    st = _state_with_labels(3)
    doc = orjson.loads(st.to_bytes())
    doc["lb"] = st.labels  # the form written before labels were packed
    assert AccountState.from_bytes(orjson.dumps(doc)).labels == st.labels


def test_labels_with_different_feature_sets_keep_the_plain_form() -> None:
    st = _state_with_labels(3)
    st.labels[1][2] = {**st.labels[1][2], "extra": 1.0}
    back = AccountState.from_bytes(st.to_bytes())
    assert back.labels == st.labels


def test_packed_rows_are_serialised_once_and_give_the_same_bytes_as_packing_afresh() -> None:
    st = _state_with_labels(6)
    first = st.to_bytes()
    assert set(st.packed_rows) == {f"p{i}" for i in range(6)}
    cached = dict(st.packed_rows)
    again = st.to_bytes()
    assert again == first and all(st.packed_rows[k] is cached[k] for k in cached)  # reused, not rebuilt
    st.labels.pop(2)  # a label resolves: it leaves the blob and the cache
    st.labels.append(["p9", 9_000, {"utilisation": 0.9, "limit": 5000.0, "dpd_now": 3.0, "anomaly": 0.5}, 0.2,
                      0.3, 1])
    blob = st.to_bytes()
    assert "p2" not in st.packed_rows and "p9" in st.packed_rows
    fresh = AccountState.from_bytes(blob)  # no cache: packs from the labels themselves
    assert fresh.packed_rows == {} and fresh.to_bytes() == blob
    assert fresh.labels == st.labels


def test_cached_rows_hold_about_their_own_size_in_memory() -> None:
    """orjson's output bytes keep their ~8 KB write buffer; cached for a label's life, that was 8 KB per
    pending label (+446 MiB of worker RSS in the bench). The cache holds exact-size copies and one
    shared tuple of feature names."""
    import tracemalloc

    st = AccountState("u1")
    for i in range(200):
        x = {f"f{k}": 0.123456789 * (i + k) for k in range(37)}  # a decision's ~37 features
        st.labels.append([f"p{i}", 1_000 * i, x, 0.01, 0.02, 0])
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        blob = st.to_bytes()
        held = tracemalloc.get_traced_memory()[0] - before - len(blob)
    finally:
        tracemalloc.stop()
    row_bytes = len(blob) / 200
    assert held / 200 < 2 * row_bytes, (held / 200, row_bytes)  # was ~8 KB per ~450-byte row
    names = {id(hit[0]) for hit in st.packed_rows.values()}
    assert len(names) == 1


def test_reminders_are_forgotten_with_their_installments_and_only_then() -> None:
    from riskmon.eventtime import MS_PER_DAY
    from riskmon.ledger import split_installments

    day = MS_PER_DAY
    st = AccountState("u1")
    st.ledger.installments = split_installments("p1", 0, 300, 3)  # due at days 30, 60, 90
    first, second = st.ledger.installments[0], st.ledger.installments[1]
    first.paid, first.paid_ts = first.amount, 35 * day
    st.reminded = ["p1:1", "p1:2"]
    st.prune(now=40 * day, dedup_window_ms=7 * day)  # cutoff day 33: the first was paid after it
    assert len(st.ledger.installments) == 3 and st.reminded == ["p1:1", "p1:2"]
    second.paid, second.paid_ts = second.amount, 61 * day
    st.prune(now=50 * day, dedup_window_ms=7 * day)  # cutoff day 43: the first goes, and its reminder
    assert [i.k for i in st.ledger.installments] == [2, 3] and st.reminded == ["p1:2"]
    st.prune(now=60 * day, dedup_window_ms=7 * day)  # nothing removed: the live reminder stays
    assert st.reminded == ["p1:2"]
    st.prune(now=80 * day, dedup_window_ms=7 * day)  # cutoff day 73: the second goes too
    assert [i.k for i in st.ledger.installments] == [3] and st.reminded == []
