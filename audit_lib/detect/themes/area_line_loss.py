"""The station-area line-loss theme (台区线损异常): areas with high or negative loss in a month
of the period (:func:`audit_lib.data.balance.monthly_loss` by the theme's parameters), and the
customers whose consumption best explains the loss (定位 localisation)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from audit_lib.data.balance import LOSS_CLASSES, AreaBalance, area_balance, monthly_loss
from audit_lib.detect.context import DetectionContext
from audit_lib.detect.findings import evidence_column
from audit_lib.detect.kernels.matrix_ops import deseasonalise, row_corr
from audit_lib.themes.catalogue import Theme


def localise(
    ctx: DetectionContext, balance: AreaBalance, areas: np.ndarray, top: int = 3
) -> dict[str, list[dict[str, Any]]]:
    """Customers of ``areas`` whose (seasonally adjusted) consumption moves most against the
    area's daily loss rate: the likeliest sources of the loss."""
    rows = np.flatnonzero(np.isin(balance.customer_area, areas))
    if not len(rows):
        return {}
    shape, _ = deseasonalise(ctx.matrix.values[rows], np.zeros(len(rows), dtype=np.int64))
    loss = balance.loss_rate[balance.customer_area[rows]]
    corr = row_corr(shape, loss)
    frame = pd.DataFrame(
        {
            "area": balance.area_id[balance.customer_area[rows]],
            "cons_no": ctx.customers["cons_no"].to_numpy()[rows],
            "corr": corr,
        }
    ).dropna()
    frame = frame[frame["corr"] < -0.3].sort_values("corr").groupby("area").head(top)
    return {
        str(a): [
            {"cons_no": str(c), "corr": round(float(r), 3)}
            for c, r in zip(g["cons_no"], g["corr"], strict=True)
        ]
        for a, g in frame.groupby("area")
    }


def detect_area_line_loss(ctx: DetectionContext, theme: Theme) -> pd.DataFrame:
    """Areas with high or negative loss in any month of the period, with the customers that
    best explain the loss."""
    balance = area_balance(ctx)
    table = monthly_loss(ctx, theme.params, balance)
    bad = table[table["loss_class"].isin(["high", "negative"])]
    if bad.empty:
        return pd.DataFrame()
    per_area = bad.groupby("area_id").agg(
        months=("month", "count"),
        worst=("loss_rate", lambda s: s.iloc[np.argmax(np.abs(s.to_numpy()))]),
        first_month=("month", "min"),
        loss_class=("loss_class", lambda s: s.mode().iloc[0]),
    )
    period = table.groupby("area_id")[["supply_kwh", "consumed_kwh"]].sum()
    per_area = per_area.join(period)
    rows = pd.Index(balance.area_id).get_indexer(per_area.index)
    suspects = localise(ctx, balance, rows)
    out = pd.DataFrame({"entity": per_area.index.to_numpy(), "area_id": per_area.index.to_numpy()})
    out["station_id"] = out["area_id"].map(
        ctx.mart.areas(ctx.bureau).drop_duplicates("area_id").set_index("area_id")["station_id"]
    )
    worst = per_area["worst"].to_numpy()
    out["score"] = np.abs(worst) + per_area["months"].to_numpy() / 100
    lost = np.maximum((per_area["supply_kwh"] - per_area["consumed_kwh"]).to_numpy(), 0.0)
    out["kwh_at_risk"] = np.where(worst > 0, lost * (1 - 0.04 / np.maximum(worst, 0.04)), 0.0)
    out["money_at_risk"] = out["kwh_at_risk"] * float(ctx.prices.median())
    pct = pd.Series(np.round(worst * 100, 1)).astype(str)
    months = per_area["months"].astype(str).to_numpy()
    names = per_area["loss_class"].map({k: v for k, v in LOSS_CLASSES.items()})
    who = [", ".join(str(s["cons_no"]) for s in suspects.get(a, [])) for a in out["entity"]]
    out["reason_zh"] = [
        f"台区{n[0]}{m}个月，最高线损率{p}%" + (f"；疑似用户{w}" if w else "")
        for n, m, p, w in zip(names, months, pct, who, strict=True)
    ]
    out["reason_en"] = [
        f"{n[1]} in {m} months, worst loss rate {p}%" + (f"; suspects {w}" if w else "")
        for n, m, p, w in zip(names, months, pct, who, strict=True)
    ]
    out["evidence"] = evidence_column(
        [
            {
                "months": int(m),
                "worst_loss_rate": float(w),
                "first_month": f,
                "suspects": suspects.get(a, []),
            }
            for a, m, w, f in zip(
                out["entity"], per_area["months"], worst, per_area["first_month"], strict=True
            )
        ]
    )
    return out
