"""Themes over 95598 tickets and data-quality checks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit_lib.data import quality
from audit_lib.data.quality_matrix import BuiltMatrix
from audit_lib.detect.context import DetectionContext
from audit_lib.detect.findings import evidence_column
from audit_lib.themes.catalogue import Theme


def detect_repeated_complaints(ctx: DetectionContext, theme: Theme) -> pd.DataFrame:
    """Customers with at least ``min_complaints`` 95598 complaints within any
    ``window_days`` of the period (重复投诉)."""
    window = int(theme.param("window_days"))
    least = int(theme.param("min_complaints"))
    sql = """
        WITH c AS (
            SELECT cons_no, opened, topic,
                   count(*) OVER (PARTITION BY cons_no ORDER BY opened
                                  RANGE BETWEEN INTERVAL (?) DAY PRECEDING AND CURRENT ROW) AS n
            FROM tickets
            WHERE bureau = ? AND month IN (SELECT unnest(?::VARCHAR[]))
              AND kind = 'complaint' AND cons_no IS NOT NULL
        ),
        cust AS (SELECT DISTINCT ON (cons_no) cons_no, station_id, area_id
                 FROM customers WHERE bureau = ?)
        SELECT c.cons_no, any_value(cust.station_id) AS station_id,
               any_value(cust.area_id) AS area_id, max(n) AS most, count(*) AS complaints,
               min(opened) AS first, max(opened) AS last,
               string_agg(DISTINCT topic, ',') AS topics
        FROM c LEFT JOIN cust USING (cons_no)
        GROUP BY c.cons_no HAVING max(n) >= ?
    """
    hits = ctx.mart.sql(sql, [window - 1, ctx.bureau, ctx.months, ctx.bureau, least])
    if hits.empty:
        return hits
    hits["entity"] = hits["cons_no"]
    hits["score"] = hits["most"].astype(float)
    most = hits["most"].astype(str)
    topics = hits["topics"].fillna("")
    hits["reason_zh"] = f"{window}日内95598投诉" + most + "次（" + topics + "）"
    hits["reason_en"] = most + f" complaints to 95598 within {window} days (" + topics + ")"
    hits["evidence"] = evidence_column(
        [
            {"complaints": int(n), "most_in_window": int(m), "first": str(f), "last": str(la)}
            for n, m, f, la in zip(
                hits["complaints"], hits["most"], hits["first"], hits["last"], strict=True
            )
        ]
    )
    return hits


def detect_data_quality(ctx: DetectionContext, theme: Theme) -> pd.DataFrame:
    """Every data-quality check of :mod:`audit_lib.data.quality`, one finding per entity
    listing the checks it fails (数据质量), from the hits that touch the period: a fault
    wholly before it (an earlier month's bill, a gap or orphan rows that ended before it)
    belongs to an earlier run."""
    built = BuiltMatrix(ctx.bureau, ctx.matrix, ctx.customers)  # no second matrix build
    hits = quality.run_checks(
        ctx.mart,
        ctx.bureau,
        built=built,
        min_missing_days=theme.param("min_missing_days"),
        min_missing_supply_days=theme.param("min_missing_supply_days"),
    )
    if hits.empty:
        return pd.DataFrame()
    hits = quality.hits_in_period(hits, ctx.start, ctx.end)
    if hits.empty:
        return pd.DataFrame()
    names = {c.name: (c.name_zh, c.name_en) for c in quality.CHECKS.values()}
    hits = hits.assign(
        zh=hits["check"].map(lambda c: names[c][0]), en=hits["check"].map(lambda c: names[c][1])
    )
    grouped = hits.groupby("entity", sort=True)
    out = grouped.agg(
        checks=("check", lambda s: sorted(set(s))),
        zh=("zh", lambda s: "、".join(sorted(set(s)))),
        en=("en", lambda s: ", ".join(sorted(set(s)))),
        count=("check", "size"),
        detail=("detail", "first"),
    ).reset_index()
    cust = ctx.customers.set_index("cons_no")
    out["station_id"] = out["entity"].map(cust["station_id"])
    out["area_id"] = out["entity"].map(cust["area_id"])
    out["score"] = out["checks"].map(len) + np.log1p(out["count"]) / 10
    out["reason_zh"] = "数据质量问题：" + out["zh"] + "（" + out["count"].astype(str) + "处）"
    out["reason_en"] = "data quality: " + out["en"] + " (" + out["count"].astype(str) + " rows)"
    out["evidence"] = evidence_column(
        [
            {"checks": c, "rows": int(n), "example": d}
            for c, n, d in zip(out["checks"], out["count"], out["detail"], strict=True)
        ]
    )
    return out
