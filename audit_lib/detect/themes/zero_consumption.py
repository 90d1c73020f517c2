"""The zero-consumption theme (运行户零电量): runs of exactly zero daily kWh while the account
is open, vectorised over the customers × days matrix."""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd

from audit_lib.detect.context import DetectionContext
from audit_lib.detect.findings import customer_hits, evidence_column
from audit_lib.detect.kernels.matrix_ops import (
    by_threads,
)
from audit_lib.themes.catalogue import Theme


def zero_runs(ctx: DetectionContext, theme: Theme) -> tuple[np.ndarray, ...]:
    """Longest run of exactly zero kWh in the period of every customer, while open.

    Returns
    -------
    tuple of arrays
        ``(hit, length, end, level)``: whether the zero-consumption theme (its parameters in
        ``theme``) flags the customer, the run length, its last period column and the mean
        kWh/day on the customer's non-zero open days (0 if none).
    """
    min_days = int(theme.param("min_zero_days"))
    min_level = theme.param("min_history_kwh_per_day")
    period = np.flatnonzero(ctx.period_columns)
    values, opened = ctx.matrix.values, ctx.open_mask
    lo, hi = (int(period[0]), int(period[-1]) + 1) if len(period) else (0, 0)

    def chunk(s: slice) -> tuple[np.ndarray, ...]:
        return _zero_runs(values[s], opened[s], lo, hi)

    length, end, level = by_threads(len(values), chunk)
    level = np.where(np.isfinite(level), level, 0.0)
    hit = ctx.active & (length >= min_days) & ((level >= min_level) | (level == 0))
    return hit, length, end, level


@numba.njit(cache=True, nogil=True)
def _zero_runs(
    x: np.ndarray, opened: np.ndarray, lo: int, hi: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Per row, in one pass: the longest run of exact zeros on open days within the columns
    ``lo``..``hi - 1`` (a positive or closed day ends it, a missing one neither counts nor
    ends it), the column (from ``lo``) where it ends, and the mean kWh of the open positive
    days (NaN without any) — ``matrix_ops.runs`` and ``nanmean_rows`` fused."""
    rows, days = x.shape
    length = np.zeros(rows, dtype=np.int64)
    end = np.zeros(rows, dtype=np.int64)
    level = np.full(rows, np.nan)
    for i in range(rows):
        run, best, at = 0, 0, 0
        total, n = 0.0, 0
        for j in range(days):
            v, o = x[i, j], opened[i, j]
            if o and v > 0:
                total += v
                n += 1
            if lo <= j < hi:
                if v == 0 and o:
                    run += 1
                if v > 0 or not o:
                    run = 0
                if run > best:
                    best, at = run, j - lo
        length[i], end[i] = best, at
        if n > 0:
            level[i] = total / n
    return length, end, level


def detect_zero_consumption(ctx: DetectionContext, theme: Theme) -> pd.DataFrame:
    """Runs of exactly zero daily kWh of at least ``min_zero_days`` while the account is open.

    Standby consumption of an empty dwelling is small but not zero; a meter that reads zero
    for weeks on an open account is stopped, bypassed or mis-recorded.
    """
    hit, length, end, level = zero_runs(ctx, theme)
    cols = ctx.period_columns
    rows = np.flatnonzero(hit)
    if not len(rows):
        return pd.DataFrame()
    dates = ctx.matrix.dates[cols]
    last = dates[end[rows]]
    first = dates[end[rows] - length[rows] + 1]
    out = customer_hits(ctx.customers, rows)
    n_days = length[rows]
    out["score"] = n_days / cols.sum() + np.minimum(level[rows], 100) / 1000
    out["kwh_at_risk"] = level[rows] * n_days
    out["money_at_risk"] = out["kwh_at_risk"] * ctx.prices.iloc[rows].to_numpy()
    lvl = pd.Series(level[rows]).round(1).astype(str)
    never = level[rows] == 0
    days = pd.Series(n_days).astype(str)
    out["reason_zh"] = np.where(
        never, "运行户连续" + days + "天零电量（无用电记录）",
        "运行户连续" + days + "天零电量（此前日均" + lvl + "kWh）",
    )  # fmt: skip
    out["reason_en"] = np.where(
        never, "zero consumption for " + days + " days on an active account (never used)",
        "zero consumption for " + days + " days on an active account (before: " + lvl
        + " kWh/day)",
    )  # fmt: skip
    out["evidence"] = evidence_column(
        [
            {
                "zero_days": int(n),
                "from": str(a.date()),
                "to": str(b.date()),
                "kwh_per_day": float(v),
            }
            for n, a, b, v in zip(n_days, first, last, level[rows], strict=True)
        ]
    )
    return out
