import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rxpipe.kernels.validate import BAD_PRICE, BAD_VOLUME, OK, OUT_OF_ORDER
from rxpipe.model import TickBatch
from rxpipe.operators.validate import TickValidator


def batch(ts, price, volume, symbol=None):
    n = len(ts)
    return TickBatch.from_arrays(
        symbol=symbol if symbol is not None else [0] * n, ts=ts, price=price, volume=volume
    )


def test_rejects_and_counts_each_kind_of_bad_tick() -> None:
    v = TickValidator(tolerance_ms=0)
    b = batch(
        ts=[10, 20, 30, 40, 50, 5, 60],
        price=[1.0, np.nan, np.inf, 0.0, -2.0, 1.0, 3.0],
        volume=[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -0.5],
    )
    out = v.update(b)
    assert out.ts.tolist() == [10]
    assert v.rejected == {
        "price is not a finite positive number": 4,
        "timestamp is earlier than the previous tick of its symbol by more than the tolerance": 1,
        "volume is negative or not finite": 1,
    }
    assert v.rejected_total == 6


def test_zero_volume_is_accepted_and_tolerance_allows_late_ticks() -> None:
    v = TickValidator(tolerance_ms=1)  # 1 ms = 1,000,000 ns
    out = v.update(
        batch(ts=[2_000_000, 1_500_000, 500_000], price=[1.0, 1.0, 1.0], volume=[0.0, 1.0, 1.0])
    )
    assert out.ts.tolist() == [2_000_000, 1_500_000]  # 0.5 ms late is fine, 1.5 ms is not


def test_order_is_checked_per_symbol() -> None:
    v = TickValidator(tolerance_ms=0)
    out = v.update(batch(ts=[100, 5, 6], price=[1.0] * 3, volume=[1.0] * 3, symbol=[0, 1, 1]))
    assert len(out) == 3


def reference(ts, price, volume, symbol, tol):
    last: dict[int, int] = {}
    codes = []
    for t, p, v, s in zip(ts, price, volume, symbol, strict=True):
        if not np.isfinite(p) or p <= 0:
            codes.append(BAD_PRICE)
        elif not np.isfinite(v) or v < 0:
            codes.append(BAD_VOLUME)
        elif s in last and t < last[s] - tol:
            codes.append(OUT_OF_ORDER)
        else:
            codes.append(OK)
            last[s] = max(last.get(s, t), t)
    return codes


floats = st.one_of(st.floats(-5, 100), st.just(float("nan")), st.just(float("inf")), st.just(0.0))


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(1, 1000), floats, floats, st.integers(0, 3)), min_size=1, max_size=60
    ),
    cuts=st.lists(st.integers(0, 60), max_size=5),
)
def test_matches_reference_and_batch_splits_do_not_matter(rows, cuts) -> None:
    ts, price, volume, symbol = (list(c) for c in zip(*rows, strict=True))
    tol_ms = 0.0001  # 100 ns
    b = batch(ts, price, volume, symbol)
    expected = [i for i, c in enumerate(reference(ts, price, volume, symbol, 100)) if c == OK]
    whole = TickValidator(tol_ms).update(b)
    assert whole.seq.tolist() == expected
    v = TickValidator(tol_ms)
    bounds = sorted({0, len(b), *[min(c, len(b)) for c in cuts]})
    pieces = [v.update(b.take(slice(lo, hi))) for lo, hi in itertools.pairwise(bounds)]
    assert TickBatch.concat(pieces).seq.tolist() == expected
    assert v.rejected_total == len(b) - len(expected)
