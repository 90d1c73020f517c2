"""The meter-events theme (计量异常事件): terminal alarms (ERC27/28/29/30, cover opened) in the
period followed by a drop of the customer's seasonally adjusted consumption."""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit_lib.detect.context import DetectionContext
from audit_lib.detect.findings import customer_hits, evidence_column
from audit_lib.detect.kernels.matrix_ops import (
    deseasonalise,
    window_means,
)
from audit_lib.themes.catalogue import Theme


def detect_meter_events(ctx: DetectionContext, theme: Theme) -> pd.DataFrame:
    """Meter alarms (ERC27/28/29/30, cover opened) in the period followed by a drop of the
    customer's seasonally adjusted consumption (after vs before, ``window_days`` each)."""
    codes = str(theme.params["codes"]).split(",")
    window = int(theme.param("window_days"))
    events = ctx.meter_events
    events = events[events["code"].isin(codes)]
    row_of = pd.Index(ctx.customers["cons_no"])
    rows = row_of.get_indexer(events["cons_no"])
    dates = ctx.matrix.dates
    col = dates.get_indexer(pd.DatetimeIndex(events["time"]).normalize())
    ok = (rows >= 0) & (col >= window) & (col + window <= len(dates))
    events, rows, col = events[ok], rows[ok], col[ok]
    if events.empty:
        return pd.DataFrame()
    shape, _ = deseasonalise(ctx.matrix.values[rows], ctx.class_codes[rows])
    means = window_means(shape, window)
    i = np.arange(len(rows))
    before, after = means[i, col - window], means[i, np.minimum(col, means.shape[1] - 1)]
    with np.errstate(invalid="ignore", divide="ignore"):
        drop = 1.0 - after / before
    frame = pd.DataFrame(
        {
            "row": rows,
            "code": events["code"].to_numpy(),
            "time": events["time"].to_numpy(),
            "drop": drop,
        }
    )
    frame = frame[frame["drop"] >= 0.3]
    frame = frame.sort_values("drop", ascending=False).drop_duplicates("row")
    if frame.empty:
        return pd.DataFrame()
    frame = frame[ctx.active[frame["row"].to_numpy()]]
    out = customer_hits(ctx.customers, frame["row"].to_numpy())
    out["score"] = frame["drop"].to_numpy()
    pct = pd.Series(np.round(frame["drop"].to_numpy() * 100)).astype(int).astype(str)
    code = pd.Series(frame["code"].to_numpy())
    when = pd.Series(pd.to_datetime(frame["time"]).dt.strftime("%Y-%m-%d").to_numpy())
    out["reason_zh"] = when + "终端告警" + code + f"，其后{window}日电量下降" + pct + "%"
    out["reason_en"] = (
        "alarm "
        + code
        + " on "
        + when
        + ", consumption down "
        + pct
        + f"% in the next {window} days"
    )
    out["evidence"] = evidence_column(
        [
            {"code": c, "time": str(t), "drop": float(d)}
            for c, t, d in zip(code, when, frame["drop"], strict=True)
        ]
    )
    return out
