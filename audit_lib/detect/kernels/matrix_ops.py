"""Vectorised building blocks over a customers × days matrix (NaN = not collected).

Everything here works on whole matrices, in row chunks where an intermediate array would be
as large as the matrix in int64/float64, so a bureau of 10⁶ customers stays within memory.
The per-row reductions (runs, means, window means, the division by a seasonal curve) are
compiled kernels (numba) that walk each row once while it is in cache, instead of a chain
of whole-matrix temporaries; there is no Python per customer.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from audit_lib.detect.kernels.rowstats import population_profile, row_levels

CHUNK_ROWS = 100_000


def by_chunks(
    n_rows: int, fn: Callable[[slice], tuple[np.ndarray, ...]], chunk: int = CHUNK_ROWS
) -> tuple[np.ndarray, ...]:
    """Apply ``fn`` to row slices and concatenate each of its per-row outputs."""
    parts = [fn(slice(i, min(i + chunk, n_rows))) for i in range(0, max(n_rows, 1), chunk)]
    return tuple(np.concatenate(p) for p in zip(*parts, strict=True))


def by_threads(
    n_rows: int, fn: Callable[[slice], tuple[np.ndarray, ...]]
) -> tuple[np.ndarray, ...]:
    """:func:`by_chunks` (same chunks, same results) with the
    chunks shared between one thread per core (their kernels release the GIL)."""
    starts = range(0, max(n_rows, 1), CHUNK_ROWS)
    if len(starts) == 1:
        return by_chunks(n_rows, fn)
    with ThreadPoolExecutor(max_workers=min(len(starts), os.cpu_count() or 1)) as pool:
        parts = list(pool.map(lambda i: fn(slice(i, min(i + CHUNK_ROWS, n_rows))), starts))
    return tuple(np.concatenate(p) for p in zip(*parts, strict=True))


def runs(flags: np.ndarray, breaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longest run of ``flags`` per row and the column where it ends.

    Days that are neither flagged nor breaks (missing readings) neither count nor end a run.
    """
    return _runs(np.asarray(flags, dtype=np.bool_), np.asarray(breaks, dtype=np.bool_))


@numba.njit(cache=True, nogil=True)
def _runs(flags: np.ndarray, breaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows, days = flags.shape
    length = np.zeros(rows, dtype=np.int64)
    end = np.zeros(rows, dtype=np.int64)
    for i in range(rows):
        run, best, at = 0, 0, 0
        for j in range(days):
            if flags[i, j]:
                run += 1
            if breaks[i, j]:
                run = 0
            if run > best:
                best, at = run, j
        length[i], end[i] = best, at
    return length, end


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
    level = _positive_means(values)
    groups = np.asarray(groups)
    codes, inverse = np.unique(groups, return_inverse=True)
    profiles = np.empty((len(codes), values.shape[1]), dtype=np.float32)
    for k in range(len(codes)):
        rows = np.flatnonzero(inverse == k)
        sample = rows[:: max(1, len(rows) // 5000)]
        shape = values[sample] / level[sample, None]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN days of a small group
            profiles[k] = population_profile(shape)
    return _divide_rows(values, level, profiles, inverse.astype(np.int64).ravel()), level


@numba.njit(cache=True, nogil=True)
def _positive_means(values: np.ndarray) -> np.ndarray:
    """Mean of the positive values of each row (NaN for a row with none)."""
    rows, days = values.shape
    out = np.full(rows, np.nan)
    for i in range(rows):
        s, n = 0.0, 0
        for j in range(days):
            v = values[i, j]
            if v > 0:
                s += v
                n += 1
        if n > 0:
            out[i] = s / n
    return out


@numba.njit(cache=True, nogil=True)
def _divide_rows(
    values: np.ndarray, level: np.ndarray, profiles: np.ndarray, group: np.ndarray
) -> np.ndarray:
    """float32 ``values / level[:, None] / profiles[group]`` (divisions in float64)."""
    rows, days = values.shape
    out = np.empty((rows, days), dtype=np.float32)
    for i in range(rows):
        lv = level[i]
        prof = profiles[group[i]]
        for j in range(days):
            out[i, j] = np.float32(values[i, j] / lv / prof[j])
    return out


def window_means(values: np.ndarray, width: int) -> np.ndarray:
    """Mean of the observed values in the ``width`` days starting at each column.

    Returns an array of shape (rows, days − width + 1); NaN where fewer than half the days of
    the window were observed.
    """
    return _window_means(values, width)


@numba.njit(cache=True, nogil=True)
def _prefix_sums(row: np.ndarray, cs: np.ndarray, cn: np.ndarray) -> None:  # pragma: no cover
    """Running sum and count of ``row``'s non-NaN values into ``cs``/``cn`` (index 0 is 0)."""
    for j in range(row.shape[0]):
        v = row[j]
        ok = not np.isnan(v)
        cs[j + 1] = cs[j] + (v if ok else 0.0)
        cn[j + 1] = cn[j] + (1.0 if ok else 0.0)


@numba.njit(cache=True, nogil=True)
def _window_means(values: np.ndarray, width: int) -> np.ndarray:
    rows, days = values.shape
    cols = max(days - width + 1, 0)
    out = np.empty((rows, cols))
    cs = np.zeros(days + 1)
    cn = np.zeros(days + 1)
    half = width / 2
    for i in range(rows):
        _prefix_sums(values[i], cs, cn)
        for j in range(cols):
            n = cn[j + width] - cn[j]
            out[i, j] = (cs[j + width] - cs[j]) / n if n >= half else np.nan
    return out


def nanmean_rows(values: np.ndarray) -> np.ndarray:
    """Mean of the observed values of each row (NaN for a row with none), without warnings."""
    return np.asarray(row_levels(np.asarray(values))[1])


def row_corr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``x`` with the same row of ``y`` over the days
    where both are observed (NaN with fewer than 10 such days)."""
    return _row_corr(np.asarray(x), np.asarray(y))


@numba.njit(cache=True, nogil=True)
def _row_corr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    rows, days = x.shape
    out = np.full(rows, np.nan)
    for i in range(rows):
        n, sx, sy = 0, 0.0, 0.0
        for j in range(days):
            a, b = x[i, j], y[i, j]
            if not (np.isnan(a) or np.isnan(b)):
                n += 1
                sx += a
                sy += b
        if n < 10:
            continue
        mx, my = sx / n, sy / n
        sxy, sxx, syy = 0.0, 0.0, 0.0
        for j in range(days):
            a, b = x[i, j], y[i, j]
            if not (np.isnan(a) or np.isnan(b)):
                dx, dy = a - mx, b - my
                sxy += dx * dy
                sxx += dx * dx
                syy += dy * dy
        out[i] = sxy / np.sqrt(sxx * syy)
    return out


def best_window_drop(
    shape: np.ndarray, recent: int, history: int, first_col: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Largest drop of a ``recent``-day mean against the ``history`` days before it, per row.

    For every start column ``t`` in ``first_col .. days − recent`` (``first_col`` ≥
    ``history``): ``drop = 1 − mean[t, t + recent) / mean[t − history, t)``, the window means
    as :func:`window_means` (NaN with fewer than half the days observed); non-finite drops
    count as −∞ and the first largest wins. One pass per row, no (rows × days) temporaries.

    Returns
    -------
    drop, at, before
        The largest drop, its start column (float) and the mean of its history window; NaN
        for every row when no start column fits.
    """
    return _best_window_drop(np.asarray(shape), recent, history, first_col)


@numba.njit(cache=True, nogil=True)
def _best_window_drop(
    shape: np.ndarray, recent: int, history: int, first_col: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    rows, days = shape.shape
    drop = np.full(rows, np.nan)
    at = np.full(rows, np.nan)
    before = np.full(rows, np.nan)
    if first_col > days - recent:
        return drop, at, before
    cs = np.zeros(days + 1)
    cn = np.zeros(days + 1)
    half_r, half_h = recent / 2, history / 2
    for i in range(rows):
        _prefix_sums(shape[i], cs, cn)
        best_t = -1
        best, best_b = -np.inf, np.nan
        for t in range(first_col, days - recent + 1):
            n_a = cn[t + recent] - cn[t]
            n_b = cn[t] - cn[t - history]
            a = (cs[t + recent] - cs[t]) / n_a if n_a >= half_r else np.nan
            b = (cs[t] - cs[t - history]) / n_b if n_b >= half_h else np.nan
            d = 1.0 - a / b if b != 0 else -np.inf  # numpy: ±inf or NaN, both −∞ here
            if not np.isfinite(d):
                d = -np.inf
            if best_t < 0 or d > best:
                best_t, best, best_b = t, d, b
        drop[i], at[i], before[i] = best, best_t, best_b
    return drop, at, before
