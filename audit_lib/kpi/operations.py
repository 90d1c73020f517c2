"""What the operations notebook calls: a bureau's headline indicators and its customer base."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from audit_lib.data.access import Mart
from audit_lib.data.periods import parse_period
from audit_lib.data.schema import CLASS_NAMES_ZH
from audit_lib.kpi.business import business_indicators, indicator_names
from audit_lib.themes.catalogue import get_theme, with_params


def operations_indicators(
    mart: str,
    bureau: str,
    period: str,
    theme_params: Mapping[str, Mapping[str, float | int | str]] | None = None,
) -> pd.DataFrame:
    """Monthly headline indicators of ``bureau`` (columns keyed as in ``INDICATORS``); the
    station areas' loss classes by the bureau's ``area_line_loss`` parameters where
    ``theme_params`` has them, else the catalogue's."""
    start, end = parse_period(period)
    theme = with_params(get_theme("area_line_loss"), (theme_params or {}).get("area_line_loss"))
    return business_indicators(Mart(mart), bureau, start, end, loss_limits=theme.params)


def indicator_table(indicators: pd.DataFrame, lang: str = "zh") -> pd.DataFrame:
    """The indicators with display names, rounded, months as rows."""
    shown = indicators.drop(columns="bureau").set_index("month").round(3)
    return shown.rename(columns=indicator_names(lang))


def customer_base(mart: str, bureau: str) -> pd.DataFrame:
    """Customers and contracted capacity per class (用户构成)."""
    frame = Mart(mart).sql(
        """
        SELECT cust_class, count(*) AS customers, sum(capacity_kva) AS capacity_kva,
               count(*) FILTER (WHERE status = 'active') AS active
        FROM customers WHERE bureau = ? GROUP BY cust_class ORDER BY customers DESC
        """,
        [bureau],
    )
    frame.insert(1, "class_zh", frame["cust_class"].map(CLASS_NAMES_ZH).fillna("代码越界"))
    return frame
