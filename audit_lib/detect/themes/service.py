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
    out = _per_entity(hits)
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


def _per_entity(hits: pd.DataFrame) -> pd.DataFrame:
    """One row per entity (sorted; hits without one left out): the sorted names of the checks
    it fails (``checks``), their Chinese and English names each sorted and joined (``zh``,
    ``en``), its number of hits (``count``) and the first hit's ``detail``.

    The set of checks an entity fails is one bit per check summed over its distinct checks,
    so the names are made once per set met, not once per entity.
    """
    names = list(quality.CHECKS)
    bit = pd.Series(1 << np.arange(len(names), dtype=np.int64), index=names)
    distinct = hits.drop_duplicates(["entity", "check"])
    masks = distinct.assign(bit=distinct["check"].map(bit)).groupby("entity", sort=True)["bit"]
    grouped = hits.groupby("entity", sort=True)
    out = pd.DataFrame(
        {"mask": masks.sum(), "count": grouped.size(), "detail": grouped["detail"].first()}
    )
    labels = {c.name: (c.name_zh, c.name_en) for c in quality.CHECKS.values()}
    sets = {
        int(m): sorted(n for i, n in enumerate(names) if int(m) >> i & 1)
        for m in out["mask"].unique()
    }
    zh = {m: "、".join(sorted({labels[c][0] for c in cs})) for m, cs in sets.items()}
    en = {m: ", ".join(sorted({labels[c][1] for c in cs})) for m, cs in sets.items()}
    mask = out.pop("mask").astype(int)
    checks = pd.Series([list(sets[m]) for m in mask], index=out.index, dtype=object)
    return out.assign(checks=checks, zh=mask.map(zh), en=mask.map(en)).reset_index()[
        ["entity", "checks", "zh", "en", "count", "detail"]
    ]
