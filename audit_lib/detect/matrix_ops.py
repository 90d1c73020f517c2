"""Vectorised building blocks over a customers × days matrix (NaN = not collected).

Everything here works on whole matrices, in row chunks where an intermediate array would be
as large as the matrix in int64/float64, so a bureau of 10⁶ customers stays within memory.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from audit_lib.detect.features import population_profile

CHUNK_ROWS = 100_000


def by_chunks(
    n_rows: int, fn: Callable[[slice], tuple[np.ndarray, ...]], chunk: int = CHUNK_ROWS
) -> tuple[np.ndarray, ...]:
    """Apply ``fn`` to row slices and concatenate each of its per-row outputs."""
    parts = [fn(slice(i, min(i + chunk, n_rows))) for i in range(0, max(n_rows, 1), chunk)]
    return tuple(np.concatenate(p) for p in zip(*parts, strict=True))


def runs(flags: np.ndarray, breaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longest run of ``flags`` per row and the column where it ends.

    Days that are neither flagged nor breaks (missing readings) neither count nor end a run.
    """
    c = np.cumsum(flags, axis=1, dtype=np.int32)
    reset = np.maximum.accumulate(np.where(breaks, c, 0), axis=1)
    length = c - reset
    end = np.argmax(length, axis=1)
    return length[np.arange(len(end)), end].astype(np.int64), end


def deseasonalise(values: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Divide each row by its mean level and its group's median daily curve.

    Seasonal swings shared by a whole class (summer air-conditioning, Spring Festival) are
    divided out, so a drop left over is the customer's own.

    Parameters
    ----------
    values
        Customers × days kWh.
    groups
        Integer group per row (e.g. customer class).

    Returns
    -------
    shape, level
        float32 scale-free matrix (≈ 1 on a typical day) and each row's mean observed kWh.
    """
    level = nanmean_rows(np.where(values > 0, values, np.nan))
    shape = values / level[:, None]
    for g in np.unique(groups):
        rows = groups == g
        sample = shape[rows][:: max(1, int(rows.sum()) // 5000)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN days of a small group
            profile = population_profile(sample)
        shape[rows] /= profile.astype(np.float32)
    return shape.astype(np.float32), level


def window_means(values: np.ndarray, width: int) -> np.ndarray:
    """Mean of the observed values in the ``width`` days starting at each column.

    Returns an array of shape (rows, days − width + 1); NaN where fewer than half the days of
    the window were observed.
    """
    ok = ~np.isnan(values)
    zero = np.zeros((values.shape[0], 1))
    cs = np.concatenate([zero, np.cumsum(np.where(ok, values, 0.0), axis=1, dtype=np.float64)], 1)
    cn = np.concatenate([zero, np.cumsum(ok, axis=1, dtype=np.float64)], 1)
    s = cs[:, width:] - cs[:, :-width]
    n = cn[:, width:] - cn[:, :-width]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n >= width / 2, s / n, np.nan)


def nanmean_rows(values: np.ndarray) -> np.ndarray:
    """Mean of the observed values of each row (NaN for a row with none), without warnings."""
    ok = ~np.isnan(values)
    n = ok.sum(axis=1)
    s = np.where(ok, values, 0.0).sum(axis=1, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / n, np.nan)


def row_corr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``x`` with the same row of ``y`` over the days
    where both are observed (NaN with fewer than 10 such days)."""
    ok = ~np.isnan(x) & ~np.isnan(y)
    n = ok.sum(axis=1)
    xm = np.where(ok, x, 0.0)
    ym = np.where(ok, y, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = xm.sum(axis=1) / n
        my = ym.sum(axis=1) / n
        dx = np.where(ok, x - mx[:, None], 0.0)
        dy = np.where(ok, y - my[:, None], 0.0)
        r = (dx * dy).sum(axis=1) / np.sqrt((dx * dx).sum(axis=1) * (dy * dy).sum(axis=1))
    return np.where(n >= 10, r, np.nan)
