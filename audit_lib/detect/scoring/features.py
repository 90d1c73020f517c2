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

import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import pandas as pd

from audit_lib.detect.kernels.rowstats import (
    EPS,
    KERNEL_FEATURES,
    column_nanmedians,
    population_profile,
    row_features,
    row_levels,
    smooth_profile,
    split_scan,
)
from audit_lib.errors import DataError

__all__ = [
    "EPS",
    "FEATURES",
    "check_matrix",
    "customer_levels",
    "levelled_profile",
    "population_profile",
    "shape_features",
    "split_scan",
]
CHUNK_ROWS = 50_000  # most rows per kernel call (one thread per core runs the calls)
PARALLEL_ROWS = 100_000  # from this many rows on, the population profile uses every core
PROFILE_ROWS = 100_000
"""Most rows the population curve is the median of: above, every k-th row. At 10⁶ customers
the curve of every 10th row differs from the whole one by at most 0.2 % on any day (measured
on the speed benchmark's bureau), at an eighth of the CPU (0.7 s against 5.4 s)."""

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
    "ceiling_change": "share of days within 2 % of the half's largest, last half minus first",
    "zero_share": "share of observed days with zero kWh",
    "zero_change": "zero share of last half minus first half",
    "zero_run": "longest run of zero days, as a share of all days",
    "missing_share": "share of days not collected (NaN)",
}


def check_matrix(
    values: np.ndarray, *, name: str = "values", overwrite_input: bool = False
) -> np.ndarray:
    """Return ``values`` as a float32 2-D matrix; negative or infinite kWh become missing.

    A clean matrix is returned as is (one compiled pass, no temporary arrays); otherwise a
    cleaned copy, or ``values`` cleaned in place with ``overwrite_input`` (float32 only).

    Raises
    ------
    DataError
        If the input is not 2-D or is empty.
    """
    arr = np.asarray(values, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"expected a non-empty customers × days matrix, got shape {arr.shape}",
                        field=name)  # fmt: skip
    if _has_bad_kwh(arr.reshape(-1) if arr.flags.c_contiguous else arr.ravel()):
        if not (overwrite_input and np.shares_memory(arr, values)):
            arr = arr.copy()
        _clean_rows(arr)
    return arr


@numba.njit(cache=True, nogil=True)
def _has_bad_kwh(flat: np.ndarray) -> bool:  # pragma: no cover - compiled
    """Whether any value is negative or infinite (NaN is not)."""
    for v in flat:  # noqa: SIM110 - an explicit loop compiles to an early exit
        if v < 0 or v == np.inf:
            return True
    return False


@numba.njit(cache=True, nogil=True)
def _clean_rows(arr: np.ndarray) -> None:  # pragma: no cover - compiled
    """Negative or infinite values → NaN, in place."""
    rows, days = arr.shape
    for i in range(rows):
        for j in range(days):
            v = arr[i, j]
            if v < 0 or v == np.inf:
                arr[i, j] = np.nan


def customer_levels(values: np.ndarray) -> np.ndarray:
    """Mean observed kWh per customer (NaN if nothing observed)."""
    return row_levels(np.ascontiguousarray(values, dtype=np.float32))[1]


def levelled_profile(
    values: np.ndarray, *, level: np.ndarray | None = None, checked: bool = False
) -> np.ndarray:
    """:func:`population_profile` of the rows divided by their own mean level, computed
    without building the divided matrix (a whole copy at 10⁶ customers); the columns are
    split between one thread per core (each column's median is its own). Above
    :data:`PROFILE_ROWS` rows, the curve is that of every k-th row.

    ``level`` (the rows' :func:`customer_levels`) and ``checked`` (``values`` came from
    :func:`check_matrix`) spare passes over a matrix the caller has already been through.
    """
    arr = np.ascontiguousarray(values if checked else check_matrix(values), dtype=np.float32)
    if arr.shape[0] > PROFILE_ROWS:  # every k-th row, as the class curves of deseasonalise
        step = -(-arr.shape[0] // PROFILE_ROWS)
        arr, level = np.ascontiguousarray(arr[::step]), None if level is None else level[::step]
    level = customer_levels(arr) if level is None else level
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.where(level > 0, 1.0 / level, np.nan).astype(np.float32)
    days = arr.shape[1]
    parts = min(os.cpu_count() or 1, max(1, arr.shape[0] // PARALLEL_ROWS))
    bounds = np.linspace(0, days, parts + 1).astype(int)
    if parts == 1:
        return smooth_profile(column_nanmedians(arr, inv))
    with ThreadPoolExecutor(max_workers=parts) as pool:
        meds = pool.map(
            lambda k: column_nanmedians(arr[:, bounds[k] : bounds[k + 1]], inv), range(parts)
        )
        return smooth_profile(np.concatenate(list(meds)))


def shape_features(
    values: np.ndarray,
    groups: np.ndarray | None = None,
    *,
    recent: int = 30,
    history: int = 90,
    first_weekday: int = 0,
    profile: np.ndarray | None = None,
    level: np.ndarray | None = None,
    checked: bool = False,
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
    level, checked
        As in :func:`levelled_profile`: the rows' mean levels if known, and whether
        ``values`` already came from :func:`check_matrix`.

    Returns
    -------
    pandas.DataFrame
        One row per customer (same order as ``values``), one float64 column per feature;
        NaN where a feature cannot be computed (e.g. nothing observed).
    """
    arr = np.ascontiguousarray(values if checked else check_matrix(values), dtype=np.float32)
    n = arr.shape[0]
    if groups is not None and len(groups) != n:
        raise DataError(f"{len(groups)} group codes for {n} customers", field="groups")
    level = customer_levels(arr) if level is None else level
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.where(level > 0, 1.0 / level, np.nan).astype(np.float32)
    if profile is None:
        profile = levelled_profile(arr, level=level, checked=True)
    prof = np.ascontiguousarray(profile, dtype=np.float32)
    out = np.empty((n, len(KERNEL_FEATURES)))

    workers = os.cpu_count() or 1
    size = max(1, min(CHUNK_ROWS, -(-n // workers)))  # every core busy, even on few rows

    def block(i: int) -> None:  # blocks of rows, not customers; the kernel releases the GIL
        part = slice(i, i + size)
        row_features(arr[part], inv[part], prof, recent, history, first_weekday, out[part])

    starts = range(0, n, size)
    if len(starts) == 1:
        block(0)
    else:
        with ThreadPoolExecutor(max_workers=min(len(starts), workers)) as pool:
            list(pool.map(block, starts))
    feats = pd.DataFrame(out, columns=list(KERNEL_FEATURES))
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
