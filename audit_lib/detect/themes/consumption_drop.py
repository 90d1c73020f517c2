"""The abrupt-drop theme (电量突变): the largest drop of a recent window against the customer's
own history, after dividing out the class-wide seasonal curve."""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit_lib.detect.context import DetectionContext
from audit_lib.detect.findings import customer_hits, evidence_column
from audit_lib.detect.kernels.matrix_ops import (
    best_window_drop,
    by_threads,
    deseasonalise,
)
from audit_lib.themes.catalogue import Theme


def detect_consumption_drop(ctx: DetectionContext, theme: Theme) -> pd.DataFrame:
    """Largest drop of a ``recent_days`` window against the ``history_days`` before it, after
    dividing out the customer's class-wide seasonal curve (电量突变)."""
    recent = int(theme.param("recent_days"))
    history = int(theme.param("history_days"))
    min_drop = theme.param("min_drop")
    min_level = theme.param("min_history_kwh_per_day")
    values = ctx.matrix.values
    groups = ctx.class_codes
    dates = ctx.matrix.dates
    first_col = max(int(dates.searchsorted(pd.Timestamp(ctx.start))), history)

    def chunk(s: slice) -> tuple[np.ndarray, ...]:
        x = np.where(ctx.open_mask[s], values[s], np.nan)
        shape, level = deseasonalise(x, groups[s])
        drop, at, before = best_window_drop(shape, recent, history, first_col)
        return drop, at, before * level

    drop, at, before_kwh = by_threads(len(values), chunk)
    hit = ctx.active & (drop >= min_drop) & (before_kwh >= min_level)
    rows = np.flatnonzero(hit)
    if not len(rows):
        return pd.DataFrame()
    out = customer_hits(ctx.customers, rows)
    d = drop[rows]
    start = dates[at[rows].astype(int)]
    out["score"] = d
    out["kwh_at_risk"] = d * before_kwh[rows] * recent
    out["money_at_risk"] = out["kwh_at_risk"] * ctx.prices.iloc[rows].to_numpy()
    pct = pd.Series(np.round(d * 100)).astype(int).astype(str)
    when = pd.Series(start.strftime("%Y-%m-%d"))
    out["reason_zh"] = (
        "自" + when + f"起{recent}日日均电量较前{history}日下降" + pct + "%（已扣除季节因素）"
    )
    out["reason_en"] = (
        f"daily average of the {recent} days from "
        + when
        + " down "
        + pct
        + f"% vs the previous {history} days (seasonally adjusted)"
    )
    out["evidence"] = evidence_column(
        [
            {"drop": float(v), "from": str(s.date()), "kwh_per_day_before": float(k)}
            for v, s, k in zip(d, start, before_kwh[rows], strict=True)
        ]
    )
    return out
