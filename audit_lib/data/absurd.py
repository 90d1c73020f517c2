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
def absurd_cuts(
    values: np.ndarray, ratio: float, min_kwh: float, limit: float
) -> np.ndarray:  # pragma: no cover - compiled
    """Per row of a customers × days matrix, the kWh above which a day is absurd (infinite
    when none can be). Most rows need one read-only pass (their largest day); the median of
    the positive days is only taken for rows that reach ``min_kwh``."""
    rows, days = values.shape
    cuts = np.full(rows, np.inf)
    buf = np.empty(days, dtype=np.float64)
    for i in range(rows):
        top = -np.inf
        for v in values[i]:
            if v > top:
                top = v
        if top <= min_kwh:
            if top > limit:
                cuts[i] = limit
            continue
        n = 0
        for v in values[i]:
            if v > 0:
                buf[n] = v
                n += 1
        k = n // 2  # median of the positive days (mean of the two middle ones when n is even)
        ordered = np.sort(buf[:n])
        median = ordered[k] if n % 2 else (ordered[k - 1] + ordered[k]) / 2.0
        cuts[i] = min(limit, max(min_kwh, ratio * median))
    return cuts


def _over(values: np.ndarray, rule: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The rows that can hold an absurd day (few: those reaching the rule's floor) and, for
    each, which of its days are absurd."""
    cuts = absurd_cuts(values, *rule)
    rows = np.flatnonzero(cuts < np.inf)
    return rows, values[rows] > cuts[rows, None]


def absurd_days(
    values: np.ndarray, ratio: float, min_kwh: float, limit: float, clear: bool
) -> np.ndarray:
    """Absurd days of every row of a customers × days matrix; with ``clear`` they become NaN
    in place."""
    rows, over = _over(values, (ratio, min_kwh, limit))
    counts = np.zeros(len(values), dtype=np.int64)
    counts[rows] = over.sum(axis=1)
    if clear:
        _clear(values, rows, over)
    return counts


def absurd_cells(values: np.ndarray, ratio: float, min_kwh: float, limit: float) -> np.ndarray:
    """Flat positions (row × days + day) of the absurd days of a matrix, ascending."""
    return _cells(values, *_over(values, (ratio, min_kwh, limit)))


def _cells(values: np.ndarray, rows: np.ndarray, over: np.ndarray) -> np.ndarray:
    row, day = np.nonzero(over)
    return np.asarray(rows[row] * values.shape[1] + day, dtype=np.int64)


def _clear(values: np.ndarray, rows: np.ndarray, over: np.ndarray) -> np.ndarray:
    """Set the ``over`` days of ``rows`` to NaN in place; the kWh they held, row-major."""
    block = values[rows]
    kwh = block[over]
    if len(kwh):
        block[over] = np.nan
        values[rows] = block
    return kwh


def clear_absurd(values: np.ndarray, rule: tuple[float, float, float] = RULE
                 ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Set the absurd days of a customers × days matrix to NaN, in place.

    Returns
    -------
    cells, kwh : ndarray
        Flat positions (row × days + day, ascending) of the cleared days and the kWh each
        held, so that the data-quality check can still report them.
    """
    rows, over = _over(values, rule)
    return _cells(values, rows, over), _clear(values, rows, over)
