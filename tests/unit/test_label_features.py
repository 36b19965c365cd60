"""Pending labels hold their decision-time features compactly, and give the models the same dict back."""

from __future__ import annotations

import tracemalloc

from riskmon.account import AccountState
from riskmon.label_features import Features, as_dict


def _x(i: int) -> dict[str, float]:
    return {f"f{k}": 0.123456789 * (i + k) for k in range(37)}  # a decision's ~37 features


def test_features_equal_the_dict_they_came_from_in_order() -> None:
    x = _x(3)
    f = Features.of(x)
    assert f == x and f.to_dict() == x and list(f) == list(x) and as_dict(f) == x and as_dict(x) is x
    assert f != {**x, "f0": 1.0} and Features.of(_x(4)) != f


def test_labels_of_the_same_features_share_one_names_tuple_and_take_a_fraction_of_a_dict() -> None:
    xs = [_x(i) for i in range(500)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        compact = [Features.of(x) for x in xs]
        per_label = (tracemalloc.get_traced_memory()[0] - before) / len(xs)
        before = tracemalloc.get_traced_memory()[0]
        dicts = [dict(zip(x, [v + 0.0 for v in x.values()], strict=True)) for x in xs]  # fresh floats too
        per_dict = (tracemalloc.get_traced_memory()[0] - before) / len(xs)
    finally:
        tracemalloc.stop()
    assert len({id(f.names) for f in compact}) == 1
    assert per_label < 600 and per_label * 3 < per_dict, (per_label, per_dict)  # ~490 vs ~1,730 bytes
    assert len(dicts) == len(compact)


def test_a_state_blob_round_trip_gives_compact_labels_with_identical_values() -> None:
    st = AccountState("u1")
    for i in range(5):
        st.labels.append([f"p{i}", 1_000 * i, Features.of(_x(i)), 0.01 * i, 0.02, 1])
    blob = st.to_bytes()
    back = AccountState.from_bytes(blob)
    assert back.labels == st.labels and back.to_bytes() == blob
    assert all(isinstance(lab[2], Features) for lab in back.labels)
    assert back.labels[3][2].to_dict() == _x(3)  # bit for bit: doubles survive JSON both ways


def test_labels_with_different_feature_sets_still_write_the_plain_form() -> None:
    st = AccountState("u1")
    st.labels.append(["p0", 1, Features.of(_x(0)), 0.1, 0.2, 0])
    st.labels.append(["p1", 2, Features.of({**_x(1), "extra": 1.0}), 0.1, 0.2, 0])
    back = AccountState.from_bytes(st.to_bytes())
    assert back.labels == st.labels
