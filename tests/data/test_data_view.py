"""The context's open-days mask (one compiled pass) against the broadcast comparison."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from audit_lib.data.matrix import ConsumptionMatrix
from audit_lib.data.view import BureauView


def test_open_mask_equals_the_date_comparison() -> None:
    rng = np.random.default_rng(0)
    n, days = 500, 90
    dates = pd.date_range("2025-01-01", periods=days)
    opened = pd.Series(pd.to_datetime("2024-11-01") + pd.to_timedelta(rng.integers(0, 150, n), "D"))
    closed = pd.Series(opened + pd.to_timedelta(rng.integers(-5, 120, n), "D"))
    closed[rng.random(n) < 0.6] = pd.NaT  # still open
    opened[:3] = pd.NaT  # no open date: never open
    customers = pd.DataFrame({"cons_no": [f"C{i}" for i in range(n)], "open_date": opened,
                              "close_date": closed})  # fmt: skip
    matrix = ConsumptionMatrix(np.zeros((n, days), np.float32), customers.cons_no.to_numpy(), dates)
    ctx = BureauView(None, "B", dt.date(2025, 1, 1), dt.date(2025, 3, 31))  # type: ignore[arg-type]
    ctx.__dict__.update(customers=customers, matrix=matrix)  # cached properties, preset
    day = dates.values.astype("datetime64[D]")
    start = np.asarray(opened, dtype="datetime64[D]")
    end = np.asarray(closed.fillna(pd.Timestamp.max.normalize()), dtype="datetime64[D]")
    want = (day[None, :] >= start[:, None]) & (day[None, :] < end[:, None])
    got = ctx.open_mask
    np.testing.assert_array_equal(got, want)
    assert got[:3].sum() == 0 and 0 < got.mean() < 1


def test_a_shared_input_is_built_once_across_threads() -> None:
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    ctx = BureauView(None, "B", dt.date(2025, 1, 1), dt.date(2025, 3, 31))  # type: ignore[arg-type]
    calls: list[int] = []
    started = threading.Event()

    def build() -> list[int]:
        started.set()
        time.sleep(0.2)  # the other thread asks meanwhile: it must wait, not build again
        calls.append(1)
        return [len(calls)]

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(ctx.shared, "k", build)
        started.wait()
        second = pool.submit(ctx.shared, "k", build)
        assert first.result() is second.result()
    assert calls == [1]
    assert ctx.shared("other", lambda: 5) == 5  # another key: built on its own
