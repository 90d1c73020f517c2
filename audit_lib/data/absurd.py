"""Absurd daily readings (读数异常偏大): one rule for the data-quality check and the theft score.

A day's kWh is absurd — a data error such as a shifted decimal, Wh read as kWh or a counter
overflow — when it is above the ingest limit of a daily reading
(:data:`~audit_lib.data.checks.KWH_LIMITS`), or above both :data:`MIN_KWH` and :data:`RATIO` ×
the median of the customer's positive days. Legitimate extremes stay below it: a factory's
busiest day is a few times its median; a dwelling that moves in after months of standby
reaches hundreds of times its median, but not 1,000 kWh a day.
"""

from __future__ import annotations

import numba
import numpy as np

from audit_lib.data.checks import KWH_LIMITS

RATIO = 1000.0
MIN_KWH = 1000.0
LIMIT = KWH_LIMITS["readings"][1]
RULE = (RATIO, MIN_KWH, LIMIT)
"""``(ratio, min_kwh, limit)`` as the kernels take them."""


@numba.njit(cache=True, nogil=True)
def _cut(row: np.ndarray, buf: np.ndarray, ratio: float, min_kwh: float, limit: float) -> float:
    """The kWh above which a day of ``row`` is absurd (infinite when none can be); the median
    is only computed for rows that reach ``min_kwh``."""  # pragma: no cover - compiled
    top = -np.inf
    for v in row:  # most rows end here: one read-only pass
        if v > top:
            top = v
    if top <= min_kwh and top <= limit:
        return np.inf
    if top <= min_kwh:
        return limit
    n = 0
    for v in row:
        if v > 0:
            buf[n] = v
            n += 1
    k = n // 2  # median of the positive days (mean of the two middle ones when n is even)
    ordered = np.sort(buf[:n])
    median = ordered[k] if n % 2 else (ordered[k - 1] + ordered[k]) / 2.0
    return min(limit, max(min_kwh, ratio * median))


@numba.njit(cache=True, nogil=True)
def absurd_days(
    values: np.ndarray, ratio: float, min_kwh: float, limit: float, clear: bool
) -> np.ndarray:  # pragma: no cover - compiled
    """Absurd days of every row of a customers × days matrix; with ``clear`` they become NaN
    in place."""
    rows, days = values.shape
    counts = np.zeros(rows, dtype=np.int64)
    buf = np.empty(days, dtype=np.float64)
    for i in range(rows):
        cut = _cut(values[i], buf, ratio, min_kwh, limit)
        if cut == np.inf:
            continue
        for j in range(days):
            if values[i, j] > cut:
                counts[i] += 1
                if clear:
                    values[i, j] = np.nan
    return counts


@numba.njit(cache=True, nogil=True)
def absurd_cells(
    values: np.ndarray, ratio: float, min_kwh: float, limit: float
) -> np.ndarray:  # pragma: no cover - compiled
    """Flat positions (row × days + day) of the absurd days of a matrix, ascending."""
    rows, days = values.shape
    cuts = np.empty(rows)
    buf = np.empty(days, dtype=np.float64)
    count = 0
    for i in range(rows):
        cuts[i] = _cut(values[i], buf, ratio, min_kwh, limit)
        if cuts[i] < np.inf:
            for j in range(days):
                count += values[i, j] > cuts[i]
    out = np.empty(count, dtype=np.int64)
    k = 0
    for i in range(rows):
        if cuts[i] < np.inf:
            for j in range(days):
                if values[i, j] > cuts[i]:
                    out[k] = i * days + j
                    k += 1
    return out
