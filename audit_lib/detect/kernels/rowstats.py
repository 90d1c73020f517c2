"""Vectorised row statistics over customers × days matrices (NaN = missing).

Every function works on all rows at once (no loop over customers): the compiled shape
features of each row (levels, quantiles, lag-1 autocorrelation, weekly strength, runs),
weekly block means, column medians and the population's daily curve, and the single-split
mean-shift scan used for trend breaks.
"""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd

EPS = 0.02  # floor on scale-free levels (customer mean = 1), avoids log(0)


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
    return _weekly_means_rows(np.asarray(a))


# ---- compiled one-pass row features ------------------------------------------------------
#
# The functions above each make a pass over a whole matrix (and numpy's NaN-aware reductions
# copy it); over 10⁶ customers × 365 days that is tens of passes over 1.5 GB. The kernel below
# computes every shape feature of :mod:`audit_lib.detect.scoring.features` for one row at a time while
# the row (≈1.5 kB) sits in the CPU cache: compiled code (numba), one call per block of rows,
# no Python per customer. It reproduces the whole-matrix definitions above (same windows,
# same float32 arithmetic where they use float32); ``tests/detect/test_detect_speed_features.py``
# checks it against the previous whole-matrix implementation.

KERNEL_FEATURES = (
    "drop_recent", "drop_thirds", "step_t", "step_drop", "step_pos", "vol_step_t",
    "vol_change", "cv_change", "cv_late", "acf1_change", "acf1_late", "weekly_change",
    "peak_change", "ceiling_change", "zero_share", "zero_change", "zero_run", "missing_share",
)  # fmt: skip
"""Columns written by :func:`row_features`, in this order."""
CEILING = 0.98
"""A day is at its half's ceiling when it is at least this share of the half's largest day:
a capped meter (限流 / clamp) records its cap day after day; a household's own peak is rarely
approached again within 2 %."""


@numba.njit(cache=True, nogil=True)
def _nanmean(a: np.ndarray, lo: int, hi: int) -> float:  # pragma: no cover - compiled
    s, n = 0.0, 0
    for j in range(lo, hi):
        v = a[j]
        if not np.isnan(v):
            s += v
            n += 1
    return s / n if n > 0 else np.nan


@numba.njit(cache=True, nogil=True)
def _log_ratio(after: float, before: float) -> float:  # pragma: no cover - compiled
    return np.log((after + EPS) / (before + EPS))


@numba.njit(cache=True, nogil=True)
def _weekly_means(a: np.ndarray, days: int, out: np.ndarray) -> int:  # pragma: no cover
    """Means of 7-day blocks of ``a[:days]`` into ``out`` (float32); returns the weeks."""
    weeks = (days + 6) // 7
    for w in range(weeks):
        s, n = 0.0, 0
        for j in range(7 * w, min(7 * w + 7, days)):
            v = a[j]
            if not np.isnan(v):
                s += v
                n += 1
        out[w] = np.float32(s / n) if n > 0 else np.float32(np.nan)
    return weeks


@numba.njit(cache=True, nogil=True)
def _split_scan(x: np.ndarray, m: int, min_seg: float, res: np.ndarray) -> None:  # pragma: no cover
    """:func:`split_scan` of one series ``x[:m]`` (float32 cumulative sums, as there).

    Writes ``t_min, t_max, i_min, i_max, before_min, after_min, before_max, after_max``
    into ``res`` (NaN when no split has ``min_seg`` observations on both sides).
    """
    f0 = np.float32(0.0)
    n_tot, s_tot, s2_tot = f0, f0, f0
    for j in range(m):
        v = x[j]
        if not np.isnan(v):
            n_tot += np.float32(1.0)
            s_tot += v
            s2_tot += v * v
    cn, cs, cs2 = f0, f0, f0
    best_lo, best_hi = np.inf, -np.inf
    i_lo, i_hi = -1, -1
    b_lo = a_lo = b_hi = a_hi = np.float32(np.nan)
    denom = max(n_tot - np.float32(2.0), np.float32(1.0))
    for j in range(m):
        v = x[j]
        if not np.isnan(v):
            cn += np.float32(1.0)
            cs += v
            cs2 += v * v
        n1, n2 = cn, n_tot - cn
        if n1 < min_seg or n2 < min_seg:
            continue
        m1 = cs / n1
        m2 = (s_tot - cs) / n2
        sse = (cs2 - n1 * m1**2) + (s2_tot - cs2 - n2 * m2**2)
        var = max(sse / denom, np.float32(1e-9))
        t = (m2 - m1) / np.sqrt(var * (np.float32(1.0) / n1 + np.float32(1.0) / n2))
        if not np.isfinite(t):
            continue
        if t < best_lo:
            best_lo, i_lo, b_lo, a_lo = t, j, m1, m2
        if t > best_hi:
            best_hi, i_hi, b_hi, a_hi = t, j, m1, m2
    if i_lo < 0:
        res[:] = np.nan
        return
    res[0], res[1], res[2], res[3] = best_lo, best_hi, i_lo, i_hi
    res[4], res[5], res[6], res[7] = b_lo, a_lo, b_hi, a_hi


@numba.njit(cache=True, nogil=True)
def _select(a: np.ndarray, n: int, k: int) -> float:  # pragma: no cover - compiled
    """The ``k``-th smallest of ``a[:n]`` (0-based, no NaN), partially reordering ``a[:n]``
    in place so that ``a[:k]`` holds values ≤ it.

    Quickselect with a median-of-three pivot and a branch-free partition (every element
    swapped, the boundary moved by the comparison's 0/1): no mispredicted branches on
    unordered data. When no element is below the pivot, a second pass gathers those equal
    to it (ties cannot stall the loop). Small ranges finish by insertion sort.
    """
    lo, hi = 0, n  # the answer's position lies in [lo, hi)
    while hi - lo > 16:
        x, y, z = a[lo], a[(lo + hi) // 2], a[hi - 1]
        pivot = max(min(x, y), min(max(x, y), z))
        i = _partition(a, lo, hi, pivot, False)  # a[lo:i] < pivot <= a[i:hi]
        if k < i:
            hi = i
            continue
        if i == lo:
            i = _partition(a, lo, hi, pivot, True)  # a[lo:i] == pivot (at least one)
            if k < i:
                return pivot
        lo = i
    for j in range(lo + 1, hi):
        v = a[j]
        p = j
        while p > lo and a[p - 1] > v:
            a[p] = a[p - 1]
            p -= 1
        a[p] = v
    return a[k]


@numba.njit(cache=True, nogil=True)
def _partition(a: np.ndarray, lo: int, hi: int, pivot: float, inclusive: bool) -> int:
    """Move the values of ``a[lo:hi]`` below ``pivot`` (at most it, ``inclusive``) to its
    front, branch-free; returns where the rest starts."""  # pragma: no cover - compiled
    i = lo
    if inclusive:
        for j in range(lo, hi):
            v = a[j]
            a[j] = a[i]
            a[i] = v
            i += v <= pivot
    else:
        for j in range(lo, hi):
            v = a[j]
            a[j] = a[i]
            a[i] = v
            i += v < pivot
    return i


@numba.njit(cache=True, nogil=True)
def _largest(a: np.ndarray, n: int, m: int) -> float:  # pragma: no cover - compiled
    """The ``m``-th largest of ``a[:n]`` (1 ≤ m ≤ n, no NaN), in one pass keeping the
    ``m`` largest seen so far in ascending order (for a small ``m``, as a high quantile's);
    ``a`` is not reordered."""
    top = np.empty(m, dtype=a.dtype)
    for k in range(m):
        v = a[k]
        p = k
        while p > 0 and top[p - 1] > v:
            top[p] = top[p - 1]
            p -= 1
        top[p] = v
    low = top[0]
    for k in range(m, n):
        v = a[k]
        if v > low:
            p = 0
            while p + 1 < m and top[p + 1] < v:
                top[p] = top[p + 1]
                p += 1
            top[p] = v
            low = top[0]
    return low


@numba.njit(cache=True, nogil=True)
def _median(a: np.ndarray, n: int) -> float:  # pragma: no cover - compiled
    """Median of ``a[:n]`` (mean of the two middle values when ``n`` is even); reorders."""
    k = n // 2
    upper = _select(a, n, k)
    if n % 2:
        return upper
    lower = a[0]
    for j in range(1, k):
        lower = max(lower, a[j])
    return (lower + upper) / 2.0


@numba.njit(cache=True, nogil=True)
def _half_stats(
    a: np.ndarray, mask: np.ndarray, days: int, buf: np.ndarray
) -> tuple[float, float, float]:  # pragma: no cover - compiled
    """Coefficient of variation, log(p95 / p50) and the :data:`CEILING` share of ``a`` where
    ``mask`` (NaN-aware)."""
    n, s, top = 0, 0.0, -np.inf
    for j in range(days):
        v = a[j]
        if mask[j] and not np.isnan(v):
            buf[n] = v
            n += 1
            s += v
            top = max(top, v)
    if n == 0:
        return np.nan, np.nan, np.nan
    mean = s / n
    ss = 0.0
    at_top = 0
    for k in range(n):
        d = buf[k] - mean
        ss += d * d
        if buf[k] >= CEILING * top:
            at_top += 1
    cv = np.sqrt(ss / n) / (abs(mean) + EPS)
    ceiling = at_top / n if top > 0 else 0.0
    k50, k95 = int(np.floor(0.5 * (n - 1))), int(np.floor(0.95 * (n - 1)))
    q95 = _largest(buf, n, n - k95)  # few values above it: one pass, no reordering
    q50 = q95 if k50 == k95 else _select(buf, n, k50)
    return cv, np.log((q95 + EPS) / (q50 + EPS)), ceiling


@numba.njit(cache=True, nogil=True)
def _acf1_weekly(
    a: np.ndarray, mask: np.ndarray, days: int, first_weekday: int
) -> tuple[float, float]:  # pragma: no cover - compiled
    """Lag-1 autocorrelation and weekly-pattern strength of ``a`` where ``mask``."""
    s, n = 0.0, 0
    for j in range(days):
        if mask[j] and not np.isnan(a[j]):
            s += a[j]
            n += 1
    if n == 0:
        return 0.0, 0.0
    m = s / n
    den, num, n_pairs = 0.0, 0.0, 0
    dow_s = np.zeros(7)
    dow_n = np.zeros(7)
    prev = np.nan
    k = first_weekday % 7  # day of week of day j, (j + first_weekday) % 7, without a division
    for j in range(days):
        v = a[j] if mask[j] else np.nan
        if not np.isnan(v):
            d = v - m
            den += d * d
            dow_s[k] += v
            dow_n[k] += 1.0
            if not np.isnan(prev):
                num += d * (prev - m)
                n_pairs += 1
        prev = v
        k = k + 1 if k < 6 else 0
    den /= n
    acf = (num / n_pairs if n_pairs > 0 else np.nan) / den if den > 1e-12 else 0.0
    k_n, k_s, k_s2 = 0, 0.0, 0.0
    for k in range(7):
        if dow_n[k] > 0:
            mk = dow_s[k] / dow_n[k]
            k_n += 1
            k_s += mk
    k_mean = k_s / k_n
    for k in range(7):
        if dow_n[k] > 0:
            mk = dow_s[k] / dow_n[k]
            k_s2 += (mk - k_mean) ** 2
    between = k_s2 / k_n
    weekly = min(between / den, 1.0) if den > 1e-12 else 0.0
    return acf, weekly


@numba.njit(cache=True, nogil=True)
def row_features(
    raw: np.ndarray,
    inv: np.ndarray,
    profile: np.ndarray,
    recent: int,
    history: int,
    first_weekday: int,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Write the :data:`KERNEL_FEATURES` shape features of every row of ``raw`` to ``out``.

    Parameters
    ----------
    raw
        float32 rows × days kWh, NaN = missing (no negative or infinite values).
    inv
        float32 1 / mean level per row (NaN when the level is not positive).
    profile
        float32 population curve (one value per day) divided out of the level-scaled rows.
    recent, history, first_weekday
        As in :func:`audit_lib.detect.scoring.features.shape_features`.
    out
        float64 rows × len(:data:`KERNEL_FEATURES`), filled in place.
    """
    rows, days = raw.shape
    adj = np.empty(days, dtype=np.float32)
    shape = np.empty(days, dtype=np.float32)
    vol = np.empty(max(days - 1, 1), dtype=np.float32)
    seen = np.empty(days, dtype=np.int64)
    early = np.empty(days, dtype=np.bool_)
    late = np.empty(days, dtype=np.bool_)
    weeks = np.empty((days + 6) // 7, dtype=np.float32)
    scan = np.empty(8)
    buf = np.empty(days, dtype=np.float32)
    eps = np.float32(EPS)
    rec_lo = max(days - recent, 0)
    hist_lo = max(days - recent - history, 0)
    for i in range(rows):
        x = raw[i]
        w = inv[i]
        n_obs = 0
        for j in range(days):
            v = x[j]
            shape[j] = v * w
            adj[j] = v * w / profile[j]
            if not np.isnan(v):
                n_obs += 1
            seen[j] = n_obs
        half, third, two_thirds = n_obs / 2, n_obs / 3, 2 * n_obs / 3
        s_f = s_l = 0.0
        c_f = c_l = 0
        zeros = z_e = z_l = o_e = o_l = 0
        run = longest = 0
        for j in range(days):
            early[j] = seen[j] <= half
            late[j] = seen[j] > half
            v = adj[j]
            if not np.isnan(v):
                if seen[j] <= third:
                    s_f += v
                    c_f += 1
                elif seen[j] > two_thirds:
                    s_l += v
                    c_l += 1
            r = x[j]
            if not np.isnan(r):
                if early[j]:
                    o_e += 1
                else:
                    o_l += 1
                if r <= 0:
                    zeros += 1
                    run += 1
                    longest = max(longest, run)
                    if early[j]:
                        z_e += 1
                    else:
                        z_l += 1
                else:
                    run = 0
        first = s_f / c_f if c_f > 0 else np.nan
        last = s_l / c_l if c_l > 0 else np.nan
        o = out[i]
        o[0] = _log_ratio(_nanmean(adj, rec_lo, days), _nanmean(adj, hist_lo, rec_lo))
        o[1] = _log_ratio(last, first)
        # level steps: scan of weekly means of the season-adjusted shape
        m = _weekly_means(adj, days, weeks)
        _split_scan(weeks, m, 2.0, scan)
        o[2] = scan[0]
        o[3] = _log_ratio(scan[5], scan[4])
        pos = (scan[2] + 1) * 7 / days
        o[4] = pos if np.isnan(pos) or pos < 1.0 else 1.0
        # volatility steps: log absolute day-to-day change of the (unadjusted) shape
        for j in range(days - 1):
            vol[j] = np.log(abs(shape[j + 1] - shape[j]) + eps)
        m = _weekly_means(vol, days - 1, weeks)
        _split_scan(weeks, m, 2.0, scan)
        t_lo = 0.0 if np.isnan(scan[0]) else scan[0]
        t_hi = 0.0 if np.isnan(scan[1]) else scan[1]
        if abs(t_hi) >= abs(t_lo):
            o[5], o[6] = scan[1], scan[7] - scan[6]
        else:
            o[5], o[6] = scan[0], scan[5] - scan[4]
        cv_e, pk_e, top_e = _half_stats(shape, early, days, buf)
        cv_l, pk_l, top_l = _half_stats(shape, late, days, buf)
        o[7] = _log_ratio(cv_l, cv_e)
        o[8] = cv_l
        acf_e, wk_e = _acf1_weekly(adj, early, days, first_weekday)
        acf_l, wk_l = _acf1_weekly(adj, late, days, first_weekday)
        o[9] = acf_l - acf_e
        o[10] = acf_l
        o[11] = wk_l - wk_e
        o[12] = pk_l - pk_e
        o[13] = top_l - top_e
        o[14] = zeros / n_obs if n_obs > 0 else np.nan
        o[15] = z_l / max(o_l, 1) - z_e / max(o_e, 1)
        o[16] = longest / days
        o[17] = 1.0 - n_obs / days


@numba.njit(cache=True, nogil=True)
def row_levels(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """Observed days and mean observed value of every row (NaN mean when none), one pass."""
    rows, days = values.shape
    count = np.zeros(rows, dtype=np.int64)
    mean = np.full(rows, np.nan)
    for i in range(rows):
        s, n = 0.0, 0
        for j in range(days):
            v = values[i, j]
            if not np.isnan(v):
                s += v
                n += 1
        count[i] = n
        if n > 0:
            mean[i] = s / n
    return count, mean


@numba.njit(cache=True, nogil=True)
def column_nanmedians(values: np.ndarray, scale: np.ndarray, block: int = 64) -> np.ndarray:
    """Median over rows of every column of ``values * scale[:, None]``, ignoring NaN.

    Columns are gathered ``block`` at a time in one sequential sweep of the rows (each row
    contributes one cache line), then each column's median is found by selection; the scaled
    matrix is never materialised. NaN for a column without observations.
    """  # pragma: no cover - compiled
    rows, days = values.shape
    out = np.full(days, np.nan)
    buf = np.empty((min(block, days), rows), dtype=values.dtype)  # float32 or 64, as the input
    count = np.zeros(block, dtype=np.int64)
    for lo in range(0, days, block):
        hi = min(lo + block, days)
        count[:] = 0
        for i in range(rows):
            w = scale[i]
            for j in range(lo, hi):
                v = values[i, j] * w
                if not np.isnan(v):
                    buf[j - lo, count[j - lo]] = v
                    count[j - lo] += 1
        for j in range(lo, hi):
            n = count[j - lo]
            if n > 0:
                out[j] = _median(buf[j - lo], n)
    return out


@numba.njit(cache=True, nogil=True)
def _weekly_means_rows(a: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """:func:`weekly_means` of every row (float64 sums, float32 means)."""
    rows, days = a.shape
    out = np.empty((rows, (days + 6) // 7), dtype=np.float32)
    for i in range(rows):
        _weekly_means(a[i], days, out[i])
    return out


def nanmedian_columns(features: np.ndarray) -> np.ndarray:
    """``np.nanmedian(features, axis=0)`` (the same values: the middle one, or the mean of
    the two middle ones) by one compiled sweep and a selection per column, not numpy's
    per-column Python loop; NaN for a column without a value."""
    arr = np.ascontiguousarray(features, dtype=np.float64)
    return np.asarray(column_nanmedians(arr, np.ones(arr.shape[0])))


def population_profile(shapes: np.ndarray, smooth: int = 7) -> np.ndarray:
    """Median scale-free curve over customers, smoothed by a centred ``smooth``-day mean."""
    arr = np.ascontiguousarray(shapes, dtype=np.float32)
    return smooth_profile(column_nanmedians(arr, np.ones(arr.shape[0], np.float32)), smooth)


def smooth_profile(med: np.ndarray, smooth: int = 7) -> np.ndarray:
    """A daily curve with its non-finite days set to 1, smoothed by a centred ``smooth``-day
    mean and kept at least 0.05 (a curve divides by it)."""
    med = np.where(np.isfinite(med), med, 1.0)
    smoothed = pd.Series(med).rolling(smooth, center=True, min_periods=1).mean().to_numpy()
    return np.maximum(smoothed, 0.05)
