"""The tariff-misapplication theme (电价执行错误): bills whose tariff is not valid for the
customer's class, or whose energy charge differs from kWh × the tariff's price; one DuckDB
query over the bureau's bills of the period."""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit_lib.data.billing import BILL_SCOPE
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
            WHERE {BILL_SCOPE}
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
