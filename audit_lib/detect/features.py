"""Per-customer consumption-shape features over a customers × days matrix.

Input is a float matrix ``values`` (customers × days, kWh per day, NaN = missing). Every
feature is computed for all customers at once with array operations (rows are processed in
chunks to bound memory; there is no loop over customers). Features are scale-free, so a
0.5 kWh/day flat and a 5,000 kWh/day factory are comparable:

1. each customer is divided by its own mean level;
2. the population's median daily curve of those shapes (smoothed over a week) is divided
   out, which removes the shared seasonal swing (summer air conditioning, holidays) so that
   a season does not look like a drop;
3. changes are measured between the recent window and the window before it, between the
   first and last thirds, and around the best single split found by a vectorised scan of
   every split point (a CUSUM-style mean-shift t-statistic).

The feature columns are listed in :data:`FEATURES` with their meaning.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit_lib.detect.rowstats import (
    EPS,
    coef_variation,
    lag1_autocorr,
    log_ratio,
    longest_run,
    nanmean_rows,
    peak_ratio,
    row_quantiles,
    split_scan,
    weekly_means,
    weekly_strength,
)
from audit_lib.errors import DataError

__all__ = [
    "EPS",
    "FEATURES",
    "check_matrix",
    "customer_levels",
    "longest_run",
    "population_profile",
    "row_quantiles",
    "shape_features",
    "split_scan",
]
CHUNK_ROWS = 50_000

FEATURES: dict[str, str] = {
    "drop_recent": "log(mean of last `recent` days / mean of the `history` days before), adjusted",
    "drop_thirds": "log(mean of last third / mean of first third), adjusted",
    "drop_vs_peers": "drop_thirds minus the median drop_thirds of the customer's group",
    "level_vs_peers": "log(customer mean / group median mean); 0 without groups",
    "step_t": "most negative mean-shift t-statistic over all split points (level)",
    "step_drop": "log(mean after / mean before) at that best split",
    "step_pos": "position of that split as a share of the days",
    "vol_step_t": "largest absolute mean-shift t-statistic of log day-to-day change",
    "vol_change": "log(day-to-day variation after / before) at the volatility split",
    "cv_change": "log(coefficient of variation last half / first half)",
    "cv_late": "coefficient of variation of the last half",
    "acf1_change": "lag-1 autocorrelation last half minus first half",
    "acf1_late": "lag-1 autocorrelation of the last half",
    "weekly_change": "weekly-pattern strength last half minus first half",
    "peak_change": "log(p95 / median) last half minus first half",
    "zero_share": "share of observed days with zero kWh",
    "zero_change": "zero share of last half minus first half",
    "zero_run": "longest run of zero days, as a share of all days",
    "missing_share": "share of days not collected (NaN)",
}


def check_matrix(values: np.ndarray, *, name: str = "values") -> np.ndarray:
    """Return ``values`` as a float32 2-D matrix; negative kWh become missing.

    Raises
    ------
    DataError
        If the input is not 2-D or is empty.
    """
    arr = np.asarray(values, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"expected a non-empty customers × days matrix, got shape {arr.shape}",
                        field=name)  # fmt: skip
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


def shape_features(
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
        raise DataError(f"{len(groups)} group codes for {n} customers", field="groups")
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
