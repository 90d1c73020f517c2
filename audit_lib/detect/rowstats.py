"""Vectorised row statistics over customers × days matrices (NaN = missing).

Every function works on all rows at once (no loop over customers): NaN-aware means and
quantiles, lag-1 autocorrelation, weekly-pattern strength, longest runs, weekly block
means, and the single-split mean-shift scan used for trend breaks.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import numpy as np

EPS = 0.02  # floor on scale-free levels (customer mean = 1), avoids log(0)


def nanmean_rows(a: np.ndarray) -> np.ndarray:
    n = np.sum(~np.isnan(a), axis=1)
    s = np.nansum(a, axis=1, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def log_ratio(after: np.ndarray, before: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log((after + EPS) / (before + EPS))


def split_scan(series: np.ndarray, min_seg: int = 14) -> tuple[np.ndarray, ...]:
    """Best single mean-shift split of every row, by a vectorised scan of all split points.

    Parameters
    ----------
    series
        Rows × days, NaN = missing.
    min_seg
        Minimum observed days on each side of a split.

    Returns
    -------
    tuple of arrays
        ``(t_min, t_max, pos_min, pos_max, before_min, after_min, before_max, after_max)``:
        the most negative and most positive Welch-style t-statistics of (mean after − mean
        before), their split positions (share of days) and the segment means at each.
    """
    valid = ~np.isnan(series)
    x = np.where(valid, series, 0.0).astype(np.float32)  # float32: half the memory traffic
    cn = np.cumsum(valid, axis=1, dtype=np.float32)
    cs = np.cumsum(x, axis=1)
    cs2 = np.cumsum(x * x, axis=1)
    n_tot, s_tot, s2_tot = cn[:, -1:], cs[:, -1:], cs2[:, -1:]
    n1, n2 = cn, n_tot - cn
    ok = (n1 >= min_seg) & (n2 >= min_seg)
    with np.errstate(invalid="ignore", divide="ignore"):
        m1, m2 = cs / n1, (s_tot - cs) / n2
        sse = (cs2 - n1 * m1**2) + (s2_tot - cs2 - n2 * m2**2)
        var = np.maximum(sse / np.maximum(n_tot - 2, 1), 1e-9)
        t = (m2 - m1) / np.sqrt(var * (1.0 / n1 + 1.0 / n2))
    ok &= np.isfinite(t)
    rows = np.arange(series.shape[0])
    has = np.asarray(ok.any(axis=1), dtype=bool)
    i_min = np.argmin(np.where(ok, t, np.inf), axis=1)
    i_max = np.argmax(np.where(ok, t, -np.inf), axis=1)
    days = series.shape[1]
    nan = np.full(series.shape[0], np.nan)
    return (
        np.where(has, t[rows, i_min], nan),
        np.where(has, t[rows, i_max], nan),
        np.where(has, (i_min + 1) / days, nan),
        np.where(has, (i_max + 1) / days, nan),
        np.where(has, m1[rows, i_min], nan),
        np.where(has, m2[rows, i_min], nan),
        np.where(has, m1[rows, i_max], nan),
        np.where(has, m2[rows, i_max], nan),
    )


def weekly_means(a: np.ndarray) -> np.ndarray:
    """Means of consecutive 7-day blocks per row (NaN-aware; last block may be shorter)."""
    n, days = a.shape
    weeks = -(-days // 7)
    padded = np.full((n, weeks * 7), np.nan, dtype=np.float32)
    padded[:, :days] = a
    blocks = padded.reshape(n, weeks, 7)
    count = np.sum(~np.isnan(blocks), axis=2)
    total = np.nansum(blocks, axis=2, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)


def longest_run(flags: np.ndarray, breaks: np.ndarray | None = None) -> np.ndarray:
    """Longest run of True per row, vectorised (cumulative count reset at each break).

    ``breaks`` marks the days that end a run (default: every False); days that are neither
    flagged nor breaks (e.g. missing readings) neither count nor break the run.
    """
    c = np.cumsum(flags, axis=1, dtype=np.int64)
    stop = ~flags if breaks is None else breaks
    reset = np.maximum.accumulate(np.where(stop, c, 0), axis=1)
    return np.asarray((c - reset).max(axis=1), dtype=np.float64)


def coef_variation(a: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"), quiet():
        return np.nanstd(a, axis=1) / (np.abs(nanmean_rows(a)) + EPS)


def lag1_autocorr(a: np.ndarray) -> np.ndarray:
    m = nanmean_rows(a)[:, None]
    d = a - m
    with np.errstate(invalid="ignore", divide="ignore"):
        num = nanmean_rows(d[:, 1:] * d[:, :-1])
        den = nanmean_rows(d * d)
        return np.where(den > 1e-12, num / den, 0.0)


def weekly_strength(a: np.ndarray, first_weekday: int) -> np.ndarray:
    """Share of a window's variance explained by day-of-week means (0..1)."""
    dow = (np.arange(a.shape[1]) + first_weekday) % 7
    total = nanmean_rows((a - nanmean_rows(a)[:, None]) ** 2)
    means = np.column_stack([nanmean_rows(a[:, dow == k]) for k in range(7)])
    with np.errstate(invalid="ignore", divide="ignore"), quiet():
        between = np.nanvar(means, axis=1)
        return np.where(total > 1e-12, np.minimum(between / total, 1.0), 0.0)


def row_quantiles(a: np.ndarray, qs: tuple[float, ...]) -> np.ndarray:
    """Per-row quantiles ignoring NaN, vectorised (one sort, no per-row loop).

    Returns an array of shape ``(len(qs), rows)``; lower-index quantiles (no interpolation).
    """
    ordered = np.sort(a, axis=1)  # NaN sort last
    count = np.sum(~np.isnan(a), axis=1)
    out = np.empty((len(qs), a.shape[0]))
    for j, q in enumerate(qs):
        idx = np.clip(np.floor(q * (count - 1)).astype(np.int64), 0, a.shape[1] - 1)
        vals = np.take_along_axis(ordered, idx[:, None], axis=1)[:, 0]
        out[j] = np.where(count > 0, vals, np.nan)
    return out


def peak_ratio(a: np.ndarray) -> np.ndarray:
    q = row_quantiles(a, (0.5, 0.95))
    return np.asarray(np.log((q[1] + EPS) / (q[0] + EPS)))


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence numpy's all-NaN slice warnings inside a block."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield
