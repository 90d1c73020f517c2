"""Themes over bills and payments: tariff misapplication, over capacity, arrears.

Each is one DuckDB query over the mart's views, restricted to the bureau's partitions and the
period's months; pandas only shapes the (few) hits into reasons.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit_lib.data.schema import CLASS_NAMES_ZH, CUSTOMER_CLASSES
from audit_lib.detect.context import DetectionContext
from audit_lib.detect.findings import evidence_column
from audit_lib.themes.catalogue import Theme

# Expected energy charge of a bill from the tariffs table (tiered tariffs by monthly kWh).
_EXPECTED_ENERGY = """
    CASE WHEN t.kind = 'tiered' THEN
        t.price * least(b.kwh, t.tier2_kwh)
        + t.tier2_price * greatest(least(b.kwh, t.tier3_kwh) - t.tier2_kwh, 0)
        + t.tier3_price * greatest(b.kwh - t.tier3_kwh, 0)
    ELSE t.price * b.kwh END
"""

_BILL_SCOPE = "b.bureau = ? AND b.month IN (SELECT unnest(?::VARCHAR[]))"

# Bills fall due on the 15th of the month after the billing month (when no payment row says).
DUE_DATE_SQL = (
    "CAST(date_trunc('month', CAST({month} || '-01' AS DATE)) "
    "+ INTERVAL 1 MONTH + INTERVAL 14 DAY AS DATE)"
)


def detect_tariff_misapplication(ctx: DetectionContext, theme: Theme) -> pd.DataFrame:
    """Bills whose tariff is not valid for the customer's class, or whose energy charge
    differs from kWh × the tariff's price by more than ``amount_tolerance`` (relative)."""
    tol = theme.param("amount_tolerance")
    sql = f"""
        WITH cust AS (SELECT DISTINCT ON (cons_no) cons_no, cust_class, station_id, area_id
                      FROM customers
                      WHERE bureau = ? AND cust_class IN (SELECT unnest(?::VARCHAR[]))),
        tar AS (SELECT DISTINCT ON (tariff_code) * FROM tariffs ORDER BY tariff_code, valid_from DESC),
        bill AS (
            SELECT b.cons_no, b.month, b.kwh, b.tariff_code, b.energy_charge,
                   c.cust_class, c.station_id, c.area_id,
                   t.classes, t.price,
                   {_EXPECTED_ENERGY} AS expected,
                   list_contains(string_split(t.classes, ','), c.cust_class) AS valid
            FROM bills b JOIN cust c USING (cons_no) JOIN tar t USING (tariff_code)
            WHERE {_BILL_SCOPE}
        ),
        flagged AS (  -- the few customers with a bill the HAVING below keeps them for
            SELECT DISTINCT cons_no FROM bill
            WHERE NOT valid OR (valid AND abs(energy_charge - expected)
                                > greatest(? * expected, 0.05))
        )
        SELECT cons_no, any_value(station_id) AS station_id, any_value(area_id) AS area_id,
               any_value(cust_class) AS cust_class,
               string_agg(DISTINCT CASE WHEN NOT valid THEN tariff_code END, ',') AS bad_tariff,
               count(*) FILTER (WHERE NOT valid) AS invalid_months,
               count(*) FILTER (WHERE valid AND abs(energy_charge - expected)
                                > greatest(? * expected, 0.05)) AS mismatch_months,
               sum(CASE WHEN valid THEN abs(energy_charge - expected) ELSE 0 END) AS mismatch_yuan,
               max(CASE WHEN valid AND expected > 0
                        THEN abs(energy_charge - expected) / expected ELSE 0 END) AS max_rel,
               sum(kwh) FILTER (WHERE NOT valid) AS invalid_kwh,
               min(month) FILTER (WHERE NOT valid OR abs(energy_charge - expected)
                                  > greatest(? * expected, 0.05)) AS first_month
        FROM bill SEMI JOIN flagged USING (cons_no) GROUP BY cons_no
        HAVING invalid_months > 0 OR mismatch_months > 0
    """
    classes = list(CUSTOMER_CLASSES)  # an unknown class is a data-quality finding, not this one
    hits = ctx.mart.sql(sql, [ctx.bureau, classes, ctx.bureau, ctx.months, tol, tol, tol])
    if hits.empty:
        return hits
    invalid = hits["invalid_months"] > 0
    hits["entity"] = hits["cons_no"]
    hits["score"] = np.where(invalid, 1.0 + hits["invalid_months"] / 12, hits["max_rel"])
    hits["money_at_risk"] = hits["mismatch_yuan"].fillna(0.0)
    hits["reason_zh"] = np.where(
        invalid,
        "电价"
        + hits["bad_tariff"].fillna("")
        + "不适用于"
        + hits["cust_class"].map(CLASS_NAMES_ZH)
        + "用户，共"
        + hits["invalid_months"].astype(str)
        + "个月",
        "电费与电量×电价不符"
        + hits["mismatch_months"].astype(str)
        + "个月，差额"
        + hits["mismatch_yuan"].round(2).astype(str)
        + "元",
    )
    hits["reason_en"] = np.where(
        invalid,
        "tariff "
        + hits["bad_tariff"].fillna("")
        + " not valid for a "
        + hits["cust_class"]
        + " customer in "
        + hits["invalid_months"].astype(str)
        + " months",
        "energy charge ≠ kWh × price in "
        + hits["mismatch_months"].astype(str)
        + " months, off by "
        + hits["mismatch_yuan"].round(2).astype(str)
        + " yuan",
    )
    hits["evidence"] = evidence_column(
        hits[
            ["bad_tariff", "invalid_months", "mismatch_months", "mismatch_yuan", "first_month"]
        ].to_dict("records")
    )
    return hits


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
        WHERE {_BILL_SCOPE} AND c.capacity_kva > 0 AND b.max_demand_kw > c.capacity_kva * ?
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
            WHERE {_BILL_SCOPE} AND b.amount >= ?
        ),
        late AS (
            SELECT *, CASE
                WHEN amount - paid > 0.01 AND due_date + ? < CAST(? AS DATE) THEN 'unpaid'
                WHEN paid_date IS NOT NULL AND paid_date > due_date + ? THEN 'late' END AS kind,
                amount - paid AS owed
            FROM bill
        )
        SELECT l.cons_no, any_value(c.station_id) AS station_id, any_value(c.area_id) AS area_id,
               count(*) FILTER (WHERE kind = 'unpaid') AS unpaid_bills,
               count(*) FILTER (WHERE kind = 'late') AS late_bills,
               sum(owed) FILTER (WHERE kind = 'unpaid') AS owed,
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
