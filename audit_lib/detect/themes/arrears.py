"""The arrears theme (电费欠费): bills unpaid past their due date, one DuckDB query over the
bureau's bills and payments."""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit_lib.data.billing import BILL_SCOPE, DUE_DATE_SQL
from audit_lib.detect.context import DetectionContext
from audit_lib.detect.findings import evidence_column
from audit_lib.themes.catalogue import Theme


def detect_arrears(ctx: DetectionContext, theme: Theme) -> pd.DataFrame:
    """Bills of the period unpaid ``overdue_days`` after their due date (as of the period's
    end), or paid more than ``overdue_days`` late."""
    days = int(theme.param("overdue_days"))
    min_amount = theme.param("min_amount")
    as_of = ctx.end
    sql = f"""
        WITH cust AS (SELECT DISTINCT ON (cons_no) cons_no, station_id, area_id
                      FROM customers WHERE bureau = ?),
        pay AS (
            SELECT cons_no, month, sum(amount) AS paid, max(paid_date) AS paid_date,
                   min(due_date) AS due_date
            FROM payments WHERE bureau = ? AND month IN (SELECT unnest(?::VARCHAR[]))
            GROUP BY cons_no, month
        ),
        bill AS (
            SELECT b.cons_no, b.month, b.amount,
                   coalesce(p.paid, 0) AS paid, p.paid_date,
                   coalesce(p.due_date, {DUE_DATE_SQL.format(month="b.month")}) AS due_date
            FROM bills b LEFT JOIN pay p USING (cons_no, month)
            WHERE {BILL_SCOPE} AND b.amount >= ?
        ),
        late AS (
            SELECT *, CASE
                WHEN amount - paid > 0.01 AND due_date + ? < CAST(? AS DATE) THEN 'unpaid'
                WHEN paid_date IS NOT NULL AND paid_date > due_date + ? THEN 'late' END AS kind,
                -- in cents, exactly: a float sum's order (DuckDB adds in parallel) moved the
                -- 13th digit from one run to the next
                CAST(amount AS DECIMAL(18, 2)) - CAST(paid AS DECIMAL(18, 2)) AS owed
            FROM bill
        )
        SELECT l.cons_no, any_value(c.station_id) AS station_id, any_value(c.area_id) AS area_id,
               count(*) FILTER (WHERE kind = 'unpaid') AS unpaid_bills,
               count(*) FILTER (WHERE kind = 'late') AS late_bills,
               CAST(sum(owed) FILTER (WHERE kind = 'unpaid') AS DOUBLE) AS owed,
               max(CASE WHEN kind = 'late' THEN paid_date - due_date END) AS max_days_late,
               min(month) AS first_month
        FROM late l LEFT JOIN cust c USING (cons_no)
        WHERE kind IS NOT NULL GROUP BY l.cons_no
    """
    months = ctx.months  # payments are partitioned by the billing month they settle
    params = [ctx.bureau, ctx.bureau, months, ctx.bureau, months, min_amount, days, as_of, days]
    hits = ctx.mart.sql(sql, params)
    if hits.empty:
        return hits
    owed = hits["owed"].fillna(0.0)
    hits["entity"] = hits["cons_no"]
    hits["score"] = hits["unpaid_bills"] + 0.5 * hits["late_bills"] + np.log1p(owed) / 10
    hits["money_at_risk"] = owed
    unpaid = hits["unpaid_bills"] > 0
    hits["reason_zh"] = np.where(
        unpaid,
        "欠费" + hits["unpaid_bills"].astype(str) + "期，金额" + owed.round(2).astype(str) + "元",
        "逾期缴费"
        + hits["late_bills"].astype(str)
        + "期，最长逾期"
        + hits["max_days_late"].fillna(0).astype(int).astype(str)
        + "天",
    )
    hits["reason_en"] = np.where(
        unpaid,
        hits["unpaid_bills"].astype(str)
        + " bills unpaid, "
        + owed.round(2).astype(str)
        + " yuan owed",
        hits["late_bills"].astype(str)
        + " bills paid late, up to "
        + hits["max_days_late"].fillna(0).astype(int).astype(str)
        + " days",
    )
    hits["evidence"] = evidence_column(
        hits[["unpaid_bills", "late_bills", "owed", "max_days_late", "first_month"]].to_dict(
            "records"
        )
    )
    return hits
