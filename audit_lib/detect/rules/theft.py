"""The theft-suspicion theme (窃电嫌疑): the theft score of :mod:`audit_lib.detect.theft` over
the bureau's matrix, corroborated by meter alarms and the station area's line loss."""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit_lib.detect.context import DetectionContext
from audit_lib.detect.findings import evidence_column
from audit_lib.detect.matrix_ops import nanmean_rows
from audit_lib.detect.theft import score_matrix
from audit_lib.themes.catalogue import Theme

CORROBORATING_CODES = ("ERC30", "ERC37", "ERC28", "ERC29")


def detect_theft_suspicion(ctx: DetectionContext, theme: Theme) -> pd.DataFrame:
    """The top ``top_share`` of customers by theft score, with corroborating evidence."""
    values = np.where(ctx.open_mask, ctx.matrix.values, np.nan).astype(np.float32)
    first_weekday = int(ctx.matrix.dates[0].weekday())
    scored = score_matrix(
        values,
        ctx.customers["cons_no"].to_numpy(),
        ctx.class_codes,
        first_weekday=first_weekday,
        source=f"bureau {ctx.bureau}",
    )
    scored = scored[scored["status"] == "scored"]
    active = set(ctx.customers.loc[ctx.customers["status"] == "active", "cons_no"])
    scored = scored[scored["cons_no"].isin(active)]
    ctx.extras["theft_scores"] = scored[["cons_no", "score", "rank"]]
    k = max(1, int(np.ceil(theme.param("top_share") * len(scored))))
    top = scored.nlargest(k, "score")
    top = top[top["score"] >= theme.param("min_score")]
    if top.empty:
        return pd.DataFrame()
    cust = ctx.customers.set_index("cons_no").loc[top["cons_no"]]
    events = ctx.mart.meter_events(ctx.bureau, ctx.months)
    events = events[
        events["code"].isin(CORROBORATING_CODES) & events["cons_no"].isin(top["cons_no"])
    ]
    alarms = events.groupby("cons_no")["code"].agg(lambda s: ",".join(sorted(set(s))))
    out = pd.DataFrame(
        {
            "entity": top["cons_no"].to_numpy(),
            "station_id": cust["station_id"].to_numpy(),
            "area_id": cust["area_id"].to_numpy(),
            "score": top["score"].to_numpy(),
        }
    )
    alarm = out["entity"].map(alarms).fillna("")
    out["reason_zh"] = top["reason_zh"].to_numpy() + np.where(alarm != "", "；终端告警" + alarm, "")
    out["reason_en"] = top["reason_en"].to_numpy() + np.where(alarm != "", "; alarms " + alarm, "")
    rows = pd.Index(ctx.customers["cons_no"]).get_indexer(out["entity"])
    recent = ctx.matrix.values[rows][:, -90:]
    history = ctx.matrix.values[rows][:, :-90]
    gap = np.nan_to_num(nanmean_rows(history) - nanmean_rows(recent))
    out["kwh_at_risk"] = np.maximum(gap, 0.0) * 90
    out["money_at_risk"] = out["kwh_at_risk"] * ctx.prices.iloc[rows].to_numpy()
    out["evidence"] = evidence_column(
        [
            {"score": float(s), "rank": int(r), "alarms": a}
            for s, r, a in zip(top["score"], top["rank"], alarm, strict=True)
        ]
    )
    return out
