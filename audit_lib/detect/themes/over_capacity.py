"""The over-capacity theme (超容用电): demand above the contracted capacity, one DuckDB query
over the bureau's bills of the period."""

from __future__ import annotations

import pandas as pd

from audit_lib.data.billing import BILL_SCOPE
from audit_lib.detect.context import DetectionContext
from audit_lib.detect.findings import evidence_column
from audit_lib.themes.catalogue import Theme


def detect_over_capacity(ctx: DetectionContext, theme: Theme) -> pd.DataFrame:
    """Months whose maximum demand exceeds the contracted capacity × ``over_ratio``."""
    ratio = theme.param("over_ratio")
    sql = f"""
        WITH cust AS (SELECT DISTINCT ON (cons_no) cons_no, capacity_kva, station_id, area_id
                      FROM customers WHERE bureau = ?)
        SELECT b.cons_no, any_value(c.station_id) AS station_id, any_value(c.area_id) AS area_id,
               any_value(c.capacity_kva) AS capacity_kva,
               max(b.max_demand_kw) AS max_demand_kw,
               count(*) AS over_months, min(b.month) AS first_month, max(b.month) AS last_month
        FROM bills b JOIN cust c USING (cons_no)
        WHERE {BILL_SCOPE} AND c.capacity_kva > 0 AND b.max_demand_kw > c.capacity_kva * ?
        GROUP BY b.cons_no
    """
    hits = ctx.mart.sql(sql, [ctx.bureau, ctx.bureau, ctx.months, ratio])
    if hits.empty:
        return hits
    over = hits["max_demand_kw"] / hits["capacity_kva"]
    hits["entity"] = hits["cons_no"]
    hits["score"] = over
    # 违约使用电费: commonly three times the basic charge of the excess capacity; shown as
    # an indicative amount at 28 元/kVA·month.
    hits["money_at_risk"] = (hits["max_demand_kw"] - hits["capacity_kva"]) * 28.0 * 3
    pct = ((over - 1) * 100).round(0).astype(int).astype(str)
    hits["reason_zh"] = (
        "最大需量超合同容量" + pct + "%（" + hits["over_months"].astype(str) + "个月）"
    )
    hits["reason_en"] = (
        "maximum demand "
        + pct
        + "% above contracted capacity in "
        + hits["over_months"].astype(str)
        + " months"
    )
    hits["evidence"] = evidence_column(
        hits[["capacity_kva", "max_demand_kw", "over_months", "first_month", "last_month"]].to_dict(
            "records"
        )
    )
    return hits
