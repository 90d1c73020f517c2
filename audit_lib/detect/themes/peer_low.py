"""The sustained-low theme (同类用户持续低电量): a customer's recent mean against peers of the
same class, industry and capacity band."""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit_lib.detect.context import DetectionContext
from audit_lib.detect.findings import customer_hits, evidence_column
from audit_lib.detect.kernels.matrix_ops import (
    nanmean_rows,
)
from audit_lib.themes.catalogue import Theme


def detect_peer_low(ctx: DetectionContext, theme: Theme) -> pd.DataFrame:
    """Customers whose mean kWh over the last ``window_days`` is below ``max_ratio_to_peers``
    × the median of peers of the same class, industry and capacity band."""
    window = int(theme.param("window_days"))
    max_ratio = theme.param("max_ratio_to_peers")
    min_peers = int(theme.param("min_peers"))
    last = np.flatnonzero(ctx.period_columns)[-window:]
    cols = slice(int(last[0]), int(last[-1]) + 1) if len(last) else slice(0, 0)  # consecutive
    opened = ctx.open_mask[:, cols]
    x = np.where(opened, ctx.matrix.values[:, cols], np.float32(np.nan))
    open_share = opened.mean(axis=1)
    mean = nanmean_rows(x)
    cust = ctx.customers
    band = np.floor(np.log2(np.maximum(cust["capacity_kva"].to_numpy(dtype=float), 1.0)))
    peers = pd.DataFrame(
        {"cls": cust["cust_class"], "ind": cust["industry"], "band": band, "mean": mean}
    )
    grouped = peers.groupby(["cls", "ind", "band"])["mean"]
    median = grouped.transform("median").to_numpy()
    size = grouped.transform("count").to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = mean / median
    hit = ctx.active & (open_share == 1) & (size >= min_peers) & (ratio < max_ratio)
    hit &= np.isfinite(ratio) & (median > 0)
    rows = np.flatnonzero(hit)
    if not len(rows):
        return pd.DataFrame()
    out = customer_hits(ctx.customers, rows)
    r = ratio[rows]
    out["score"] = 1.0 - r
    out["kwh_at_risk"] = (median[rows] - mean[rows]) * window
    out["money_at_risk"] = out["kwh_at_risk"] * ctx.prices.iloc[rows].to_numpy()
    pct = pd.Series(np.round(r * 100)).astype(int).astype(str)
    out["reason_zh"] = f"近{window}日日均电量仅为同类用户中位数的" + pct + "%"
    out["reason_en"] = (
        f"daily average of the last {window} days is " + pct + "% of similar customers'"
    )
    out["evidence"] = evidence_column(
        [
            {"kwh_per_day": float(m), "peer_median": float(p), "peers": int(n)}
            for m, p, n in zip(mean[rows], median[rows], size[rows], strict=True)
        ]
    )
    return out
