"""Business indicators against figures recomputed independently from the mart's tables."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit_lib.data.access import Mart
from audit_lib.demo.generate import DemoConfig, generate_demo
from audit_lib.kpi.business import INDICATORS, business_indicators
from audit_lib.kpi.operations import customer_base, indicator_table

START, END = dt.date(2024, 1, 1), dt.date(2024, 6, 30)


@pytest.fixture(scope="module")
def mart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("kpi")
    generate_demo(out, DemoConfig(bureaus=1, customers=600, days=182, start=START, seed=3))
    return out / "mart"


def test_indicators_match_the_bills(mart: Path) -> None:
    m = Mart(mart)
    ind = business_indicators(m, "YZ", START, END).set_index("month")
    bills = m.bills("YZ")
    per_month = bills.groupby("month").agg(kwh=("kwh", "sum"), amount=("amount", "sum"))
    np.testing.assert_allclose(ind["sales_kwh"], per_month.loc[ind.index, "kwh"], rtol=1e-9)
    np.testing.assert_allclose(ind["revenue"], per_month.loc[ind.index, "amount"], rtol=1e-9)
    np.testing.assert_allclose(ind["avg_price"], ind["revenue"] / ind["sales_kwh"])
    assert list(ind.columns[: len(INDICATORS)]) == list(INDICATORS)


def test_indicators_are_plausible(mart: Path) -> None:
    ind = business_indicators(Mart(mart), "YZ", START, END)
    due = ind["collection_rate"].dropna()
    assert len(due) >= 4 and due.between(90, 100.001).all()  # a few arrears, most paid
    assert ind["line_loss_rate"].between(0, 10).all()  # technical loss of a few percent + theft
    assert ind["qualified_areas"].between(50, 100).all()
    assert ind["reading_completeness"].between(95, 100).all()
    assert (ind["complaints_per_10k"] >= 0).all()
    assert ind["avg_price"].between(0.4, 1.0).all()  # 元/kWh


def test_collection_rate_leaves_out_bills_not_yet_due(mart: Path) -> None:
    ind = business_indicators(Mart(mart), "YZ", START, END).set_index("month")
    assert np.isnan(ind.loc["2024-06", "collection_rate"])  # due 15 July, after the period


def test_operations_tables(mart: Path) -> None:
    base = customer_base(str(mart), "YZ")
    assert base["customers"].sum() == Mart(mart).customers("YZ")["cons_no"].nunique()
    assert "居民" in set(base["class_zh"])
    table = indicator_table(business_indicators(Mart(mart), "YZ", START, END), "en")
    assert "sales (kWh)" in table.columns and "2024-01" in table.index
    assert isinstance(table, pd.DataFrame)
