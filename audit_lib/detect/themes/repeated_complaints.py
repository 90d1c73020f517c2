"""The repeated-complaints theme (重复投诉): customers with several 95598 complaints within a
window of the period."""

from __future__ import annotations

import pandas as pd

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
