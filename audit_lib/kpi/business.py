"""Business indicators of a bureau per month (运营展示 headline indicators).

Sales kWh (售电量), revenue (电费收入), average price (平均电价), collection rate
(电费回收率 = collected ÷ billed), line loss rate (线损率) and share of qualified station areas
(台区合格率), meter-reading completeness (采集成功率), and 95598 complaints per 10,000
customers. Every figure is one DuckDB query over the mart, except line loss, which reuses the
station-area balance of :mod:`audit_lib.data.balance`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pandas as pd

from audit_lib.data.access import Mart
from audit_lib.data.balance import monthly_loss
from audit_lib.data.billing import DUE_DATE_SQL
from audit_lib.data.view import BureauView
from audit_lib.themes.catalogue import get_theme

INDICATORS: dict[str, tuple[str, str, str]] = {
    "customers": ("用户数", "customers", "户"),
    "sales_kwh": ("售电量", "sales", "kWh"),
    "revenue": ("电费收入", "revenue", "元"),
    "avg_price": ("平均电价", "average price", "元/kWh"),
    "collection_rate": ("电费回收率", "collection rate", "%"),
    "line_loss_rate": ("综合线损率", "line loss rate", "%"),
    "qualified_areas": ("台区线损合格率", "qualified station areas", "%"),
    "reading_completeness": ("采集成功率", "meter-reading completeness", "%"),
    "complaints_per_10k": ("万户投诉量", "complaints per 10k customers", "件"),
}


def indicator_names(lang: str = "zh") -> dict[str, str]:
    """Display name of every indicator, with its unit."""
    i = 0 if lang == "zh" else 1
    return {k: f"{v[i]} ({v[2]})" for k, v in INDICATORS.items()}


def _billing(mart: Mart, bureau: str, months: list[str], as_of: dt.date) -> pd.DataFrame:
    """Billed and collected per month; the collection rate counts bills already due."""
    return mart.sql(
        f"""
        WITH b AS (
            SELECT month, count(DISTINCT cons_no) AS customers, sum(kwh) AS sales_kwh,
                   sum(amount) AS revenue,
                   CASE WHEN any_value({DUE_DATE_SQL.format(month="month")}) <= ?
                        THEN sum(amount) END AS due
            FROM bills WHERE bureau = ? AND month IN (SELECT unnest(?::VARCHAR[]))
            GROUP BY month
        ),
        p AS (
            SELECT month, sum(amount) AS collected FROM payments
            WHERE bureau = ? AND month IN (SELECT unnest(?::VARCHAR[])) AND paid_date <= ?
            GROUP BY month
        )
        SELECT b.*, coalesce(p.collected, 0) AS collected FROM b LEFT JOIN p USING (month)
        """,
        [as_of, bureau, months, bureau, months, as_of],
    )


def _readings(mart: Mart, bureau: str, months: list[str]) -> pd.DataFrame:
    return mart.sql(
        """
        WITH c AS (SELECT DISTINCT ON (cons_no) cons_no, open_date, close_date
                   FROM customers WHERE bureau = ?),
        days AS (SELECT CAST(d AS DATE) AS date FROM range(
                    CAST((SELECT min(m) FROM unnest(?::VARCHAR[]) t(m)) || '-01' AS DATE),
                    CAST((SELECT max(m) FROM unnest(?::VARCHAR[]) t(m)) || '-01' AS DATE)
                        + INTERVAL 1 MONTH, INTERVAL 1 DAY) r(d)),
        expected AS (
            SELECT strftime(days.date, '%Y-%m') AS month, count(*) AS expected
            FROM c JOIN days ON days.date >= c.open_date
                            AND (c.close_date IS NULL OR days.date < c.close_date)
            GROUP BY 1
        ),
        got AS (
            SELECT r.month, count(DISTINCT (r.cons_no, r.date)) AS collected
            FROM readings r JOIN c USING (cons_no)
            WHERE r.bureau = ? AND r.month IN (SELECT unnest(?::VARCHAR[])) AND r.kwh IS NOT NULL
            GROUP BY 1
        )
        SELECT e.month, e.expected, coalesce(g.collected, 0) AS collected_readings
        FROM expected e LEFT JOIN got g USING (month)
        """,
        [bureau, months, months, bureau, months],
    )


def _complaints(mart: Mart, bureau: str, months: list[str]) -> pd.DataFrame:
    return mart.sql(
        """
        SELECT month, count(*) AS complaints FROM tickets
        WHERE bureau = ? AND month IN (SELECT unnest(?::VARCHAR[])) AND kind = 'complaint'
        GROUP BY month
        """,
        [bureau, months],
    )


def business_indicators(
    mart: Mart,
    bureau: str,
    start: dt.date,
    end: dt.date,
    view: BureauView | None = None,
    loss_limits: Mapping[str, float | int | str] | None = None,
) -> pd.DataFrame:
    """Headline indicators of ``bureau`` for each month of ``start``..``end``.

    Parameters
    ----------
    mart
        The mart.
    bureau
        Bureau code.
    start, end
        The period; months are whole calendar months.
    view
        A view of the same bureau and period to reuse its matrix (a detection context is one;
        default: a new one).
    loss_limits
        The line-loss classes' limits (:func:`~audit_lib.data.balance.monthly_loss`); default:
        the line-loss theme's parameters in the catalogue.

    Returns
    -------
    pandas.DataFrame
        One row per month, one column per key of :data:`INDICATORS` (rates in percent).
    """
    view = view or BureauView(mart, bureau, start, end)
    months = view.months
    out = pd.DataFrame({"month": months})
    out = out.merge(_billing(mart, bureau, months, end), on="month", how="left")
    out = out.merge(_readings(mart, bureau, months), on="month", how="left")
    out = out.merge(_complaints(mart, bureau, months), on="month", how="left")
    loss = monthly_loss(view, loss_limits or get_theme("area_line_loss").params)
    computable = loss[loss["loss_class"] != "not_computable"]
    per_month = computable.groupby("month").agg(
        supply=("supply_kwh", "sum"), consumed=("consumed_kwh", "sum")
    )
    qualified = (loss["loss_class"] == "qualified").groupby(loss["month"]).mean()
    out = out.set_index("month")
    out["avg_price"] = out["revenue"] / out["sales_kwh"]
    out["collection_rate"] = 100 * out["collected"] / out["due"]
    out["line_loss_rate"] = 100 * (1 - per_month["consumed"] / per_month["supply"])
    out["qualified_areas"] = 100 * qualified
    out["reading_completeness"] = 100 * out["collected_readings"] / out["expected"]
    out["complaints_per_10k"] = 1e4 * out["complaints"].fillna(0) / out["customers"]
    return out[list(INDICATORS)].reset_index().assign(bureau=bureau)
