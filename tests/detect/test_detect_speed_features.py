"""The shape features agree with the implementation they replaced (kept here as reference).

The reference below is the straightforward whole-matrix NumPy version of
:func:`audit_lib.detect.scoring.features.shape_features` as it was before the speed work (one pass
per statistic, nanmedian / sort where they were used). The optimised code must give the
same features to 1e-4 (relative) on random matrices with missing days, zeros, late
starters, never-collected rows, negative and infinite kWh, and peer groups.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from detect_data import make_daily

from audit_lib.detect.scoring.features import FEATURES, shape_features

CHUNK_ROWS = 50_000


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence numpy's all-NaN slice warnings inside a block."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


# ---- reference implementation (the code before the speed work) -------------------------

EPS = 0.02  # floor on scale-free levels (customer mean = 1), avoids log(0)
CEILING = 0.98  # a day within 2 % of its half's largest is at the ceiling


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


def check_matrix(values: np.ndarray, *, name: str = "values") -> np.ndarray:
    """Return ``values`` as a float32 2-D matrix; negative kWh become missing.

    Raises
    ------
    DataError
        If the input is not 2-D or is empty.
    """
    arr = np.asarray(values, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"bad shape {arr.shape} of {name}")
    if np.isinf(arr).any() or (arr < 0).any():
        arr = np.where(np.isfinite(arr) & (arr >= 0), arr, np.float32(np.nan))
    return arr


def customer_levels(values: np.ndarray) -> np.ndarray:
    """Mean observed kWh per customer (NaN if nothing observed)."""
    n_obs = np.sum(~np.isnan(values), axis=1)
    total = np.nansum(values, axis=1, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_obs > 0, total / np.maximum(n_obs, 1), np.nan)


def population_profile(shapes: np.ndarray, smooth: int = 7) -> np.ndarray:
    """Median scale-free curve over customers, smoothed by a centred ``smooth``-day mean."""
    with np.errstate(all="ignore"):
        med = np.nanmedian(shapes, axis=0) if shapes.shape[0] else np.ones(shapes.shape[1])
    med = np.where(np.isfinite(med), med, 1.0)
    smoothed = pd.Series(med).rolling(smooth, center=True, min_periods=1).mean().to_numpy()
    return np.maximum(smoothed, 0.05)


def reference_shape_features(
    values: np.ndarray,
    groups: np.ndarray | None = None,
    *,
    recent: int = 30,
    history: int = 90,
    first_weekday: int = 0,
    profile: np.ndarray | None = None,
) -> pd.DataFrame:
    """Compute :data:`FEATURES` for every customer (row) of ``values``.

    Parameters
    ----------
    values
        Customers × days kWh, NaN = missing; negative or infinite values count as missing.
    groups
        Optional integer peer group per customer (class × capacity band, station area …).
    recent, history
        Window lengths (days) of ``drop_recent``.
    first_weekday
        Day of week of column 0 (Monday = 0), for the weekly-pattern feature.
    profile
        Population curve to divide out; by default the median of these customers' shapes.

    Returns
    -------
    pandas.DataFrame
        One row per customer (same order as ``values``), one float64 column per feature;
        NaN where a feature cannot be computed (e.g. nothing observed).
    """
    arr = check_matrix(values)
    n = arr.shape[0]
    if groups is not None and len(groups) != n:
        raise ValueError("groups")
    level = customer_levels(arr)
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.where(level > 0, 1.0 / level, np.nan).astype(np.float32)
    if profile is None:
        profile = population_profile(arr * inv[:, None])
    parts = [
        _chunk_features(
            arr[i : i + CHUNK_ROWS],
            inv[i : i + CHUNK_ROWS],
            profile,
            recent,
            history,
            first_weekday,
        )
        for i in range(0, n, CHUNK_ROWS)
    ]
    feats = pd.concat(parts, ignore_index=True)
    g = np.zeros(n, dtype=np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
    grp_drop = pd.Series(feats["drop_thirds"].to_numpy()).groupby(g).transform("median")
    feats["drop_vs_peers"] = feats["drop_thirds"].to_numpy() - grp_drop.to_numpy()
    if groups is None:
        feats["level_vs_peers"] = 0.0
    else:
        grp_level = pd.Series(level).groupby(g).transform("median").to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            feats["level_vs_peers"] = np.log((level + 1e-6) / (grp_level + 1e-6))
    return feats[list(FEATURES)]


def _chunk_features(
    raw: np.ndarray,
    inv: np.ndarray,
    profile: np.ndarray,
    recent: int,
    history: int,
    first_weekday: int,
) -> pd.DataFrame:
    """Features of one block of rows (see :func:`shape_features`)."""
    days = raw.shape[1]
    adj = raw * inv[:, None] / profile[None, :].astype(np.float32)
    observed = ~np.isnan(raw)
    # halves and thirds of each customer's OWN observed days (late starters included)
    seen = np.cumsum(observed, axis=1)
    n_obs = seen[:, -1:]
    nan = np.float32(np.nan)
    early = np.where(seen <= n_obs / 2, adj, nan)
    late = np.where(seen > n_obs / 2, adj, nan)
    first = np.where(seen <= n_obs / 3, adj, nan)
    last = np.where(seen > 2 * n_obs / 3, adj, nan)
    rec = adj[:, max(days - recent, 0) :]
    hist = adj[:, max(days - recent - history, 0) : max(days - recent, 0)]
    out: dict[str, np.ndarray] = {
        "drop_recent": log_ratio(nanmean_rows(rec), nanmean_rows(hist)),
        "drop_thirds": log_ratio(nanmean_rows(last), nanmean_rows(first)),
    }
    # change scans run on weekly means: 7× cheaper and less noisy than daily values
    t_min, _, pos_min, _, before, after, _, _ = split_scan(weekly_means(adj), min_seg=2)
    pos_min = np.minimum(pos_min * (-(-days // 7)) * 7 / days, 1.0)
    out["step_t"], out["step_drop"], out["step_pos"] = t_min, log_ratio(after, before), pos_min
    shape = raw * inv[:, None]  # scale-free, NOT season-adjusted: flatness is local
    with np.errstate(invalid="ignore", divide="ignore"):
        vol = np.log(np.abs(np.diff(shape, axis=1)) + EPS)
    v_lo, v_hi, _, _, b_lo, a_lo, b_hi, a_hi = split_scan(weekly_means(vol), min_seg=2)
    pick_hi = np.abs(np.nan_to_num(v_hi)) >= np.abs(np.nan_to_num(v_lo))
    out["vol_step_t"] = np.where(pick_hi, v_hi, v_lo)
    out["vol_change"] = np.where(pick_hi, a_hi - b_hi, a_lo - b_lo)
    early_s = np.where(seen <= n_obs / 2, shape, nan)
    late_s = np.where(seen > n_obs / 2, shape, nan)
    cv_e, cv_l = coef_variation(early_s), coef_variation(late_s)
    out["cv_change"] = log_ratio(cv_l, cv_e)
    out["cv_late"] = cv_l
    out["acf1_late"] = lag1_autocorr(late)
    out["acf1_change"] = out["acf1_late"] - lag1_autocorr(early)
    out["weekly_change"] = weekly_strength(late, first_weekday) - weekly_strength(
        early, first_weekday
    )
    out["peak_change"] = peak_ratio(late_s) - peak_ratio(early_s)
    out["ceiling_change"] = ceiling_share(late_s) - ceiling_share(early_s)
    zero = observed & (raw <= 0)
    count = n_obs[:, 0].astype(np.float64)
    in_early = seen <= n_obs / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        out["zero_share"] = np.where(count > 0, zero.sum(axis=1) / np.maximum(count, 1), np.nan)
        z_e = (zero & in_early).sum(axis=1) / np.maximum((observed & in_early).sum(axis=1), 1)
        z_l = (zero & ~in_early).sum(axis=1) / np.maximum((observed & ~in_early).sum(axis=1), 1)
    out["zero_change"] = z_l - z_e
    out["zero_run"] = longest_run(zero, observed & ~zero) / days
    out["missing_share"] = 1.0 - count / days
    return pd.DataFrame({k: np.asarray(v, dtype=np.float64) for k, v in out.items()})


def ceiling_share(a: np.ndarray) -> np.ndarray:
    """Share of each row's observed values within 2 % of the row's largest (0 when the
    largest is not positive, NaN when nothing is observed)."""
    with np.errstate(invalid="ignore"), quiet():
        top = np.nanmax(a, axis=1, keepdims=True)
        share = np.sum(a >= CEILING * top, axis=1) / np.sum(~np.isnan(a), axis=1)
    return np.where(top[:, 0] > 0, share, np.where(np.isnan(top[:, 0]), np.nan, 0.0))


# ---- the comparison --------------------------------------------------------------------


def messy_matrix(seed: int, n: int = 400, days: int = 365) -> tuple[np.ndarray, np.ndarray]:
    """Random kWh with the awkward cases of real data, and peer groups."""
    rng = np.random.default_rng(seed)
    values, _ = make_daily(rng, n=n, days=days, n_thieves=n // 10, missing=0.05)
    values[rng.random(values.shape) < 0.03] = 0.0  # scattered zero days
    d = days
    values[5, d // 2 : d // 2 + d // 6] = 0.0  # a long zero run
    values[6, 2 * d // 3 : 5 * d // 6] = 0.0
    values[6, 3 * d // 4] = np.nan  # a gap inside a zero run
    values[7, : d // 3] = np.nan  # a late starter
    values[8] = np.nan  # never collected
    values[9] = 0.0  # all zero
    values[10, :7] = -2.0  # negative readings → missing
    values[11, d // 4] = np.inf
    values[12, ::2] = np.nan  # every other day missing
    values[13, 4 * d // 5 :] = np.nan  # stopped early
    values[14] = np.float32(3.0)  # perfectly flat
    groups = rng.integers(0, 5, size=n)
    return values, groups


@pytest.mark.parametrize(
    ("seed", "days", "weekday", "use_groups"),
    [(1, 365, 0, True), (2, 485, 3, False), (3, 123, 6, True), (4, 97, 2, True)],
)
def test_features_agree_with_reference(
    seed: int, days: int, weekday: int, use_groups: bool
) -> None:
    values, groups = messy_matrix(seed, days=days)
    g = groups if use_groups else None
    new = shape_features(values.copy(), g, first_weekday=weekday)
    ref = reference_shape_features(values.copy(), g, first_weekday=weekday)
    assert list(new.columns) == list(FEATURES)
    for col in FEATURES:
        a, b = new[col].to_numpy(), ref[col].to_numpy()
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=col)
        ok = ~np.isnan(b)
        np.testing.assert_allclose(a[ok], b[ok], rtol=1e-4, atol=1e-5, err_msg=col)


def test_features_agree_with_reference_given_profile_and_small_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Chunking is invisible: a tiny chunk size gives the same features."""
    import audit_lib.detect.scoring.features as features_module

    values, groups = messy_matrix(7, n=300, days=200)
    profile = np.linspace(0.8, 1.2, 200)
    ref = reference_shape_features(values.copy(), groups, profile=profile)
    monkeypatch.setattr(features_module, "CHUNK_ROWS", 37)
    new = shape_features(values.copy(), groups, profile=profile)
    np.testing.assert_allclose(new.to_numpy(), ref.to_numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("limit", [400, 150, 99])
def test_population_curve_of_many_rows_is_that_of_every_kth_row(
    monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    """Above PROFILE_ROWS rows the curve is the reference curve of rows 0, k, 2k, …"""
    import audit_lib.detect.scoring.features as features_module

    values, _ = messy_matrix(9, n=400, days=120)
    monkeypatch.setattr(features_module, "PROFILE_ROWS", limit)
    step = -(-400 // limit)
    arr = check_matrix(values)[::step]
    with quiet():  # rows never collected have level 0: the reference divides by it
        want = population_profile(arr * (1.0 / customer_levels(arr))[:, None].astype(np.float32))
    got = features_module.levelled_profile(values)
    assert len(arr) <= limit
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_weekly_means_agree_with_reference() -> None:
    from audit_lib.detect.kernels.rowstats import weekly_means as fast_weekly_means

    values, _ = messy_matrix(8, n=50, days=200)
    for a in (values, values.astype(np.float64)[:, 3:]):
        want = weekly_means(a)
        got = fast_weekly_means(a)
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=1e-6)
