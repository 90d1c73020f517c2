"""The generated utility looks like one: class mix and scale, seasons, holidays, bills, loss."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from audit_lib.demo.generate import DemoConfig, generate_bureau
from audit_lib.demo.generate.tariffs import tariffs_table

CONFIG = DemoConfig(bureaus=1, customers=8000, days=400, start=dt.date(2024, 1, 1), seed=11)
LEGIT = ("legit_vacancy", "legit_move_in", "legit_move_out")


@pytest.fixture(scope="module")
def tables() -> dict[str, pa.Table]:
    return generate_bureau(CONFIG, 0)


@pytest.fixture(scope="module")
def frames(tables: dict[str, pa.Table]) -> dict[str, pd.DataFrame]:
    return {name: t.to_pandas() for name, t in tables.items()}


@pytest.fixture(scope="module")
def daily(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Customers × days kWh (NaN = no reading), customers in table order, first value kept."""
    r = frames["readings"].drop_duplicates(["cons_no", "date"])
    wide = r.pivot(index="cons_no", columns="date", values="kwh")
    return wide.reindex(frames["customers"]["cons_no"])


def _class_mean(daily: pd.DataFrame, frames: dict[str, pd.DataFrame], cls: str) -> pd.Series:
    """Mean kWh per day over clean customers of ``cls``."""
    faulty = set(frames["truth"]["entity"])
    cust = frames["customers"]
    keep = cust[(cust["cust_class"] == cls) & ~cust["cons_no"].isin(faulty)]["cons_no"]
    series = daily.loc[keep].mean(axis=0)
    series.index = pd.to_datetime(series.index)
    return series


def _window(series: pd.Series, a: str, b: str) -> float:
    return float(series.loc[a:b].mean())


def test_customer_mix_is_mostly_residential(frames: dict[str, pd.DataFrame]) -> None:
    share = frames["customers"]["cust_class"].value_counts(normalize=True)
    assert 0.8 < share["residential"] < 0.95
    for cls in ("commercial", "industrial", "agricultural"):
        assert 0 < share[cls] < 0.15, cls


def test_consumption_scale_spans_orders_of_magnitude(
    daily: pd.DataFrame, frames: dict[str, pd.DataFrame]
) -> None:
    per_customer = daily.mean(axis=1, skipna=True)
    cls = frames["customers"].set_index("cons_no")["cust_class"]
    median = per_customer.groupby(cls).median()
    assert 2 < median["residential"] < 15
    assert median["commercial"] > 5 * median["residential"]
    assert median["industrial"] > 100 * median["residential"]
    assert per_customer.max() / per_customer[per_customer > 0].min() > 1e4


def test_residential_summer_peak_exceeds_spring_and_winter_bump(
    daily: pd.DataFrame, frames: dict[str, pd.DataFrame]
) -> None:
    res = _class_mean(daily, frames, "residential")
    spring = _window(res, "2024-04-01", "2024-05-15")
    assert _window(res, "2024-07-15", "2024-08-31") > 1.3 * spring
    assert _window(res, "2024-01-02", "2024-01-25") > 1.05 * spring


def test_spring_festival_commerce_and_industry_drop_homes_rise(
    daily: pd.DataFrame, frames: dict[str, pd.DataFrame]
) -> None:
    festival, before = ("2024-02-10", "2024-02-16"), ("2024-01-08", "2024-01-26")
    for cls, limit in (("commercial", 0.7), ("industrial", 0.5)):
        s = _class_mean(daily, frames, cls)
        assert _window(s, *festival) < limit * _window(s, *before), cls
    res = _class_mean(daily, frames, "residential")
    assert _window(res, *festival) > 1.1 * _window(res, *before)


def test_weekends_differ_by_class(daily: pd.DataFrame, frames: dict[str, pd.DataFrame]) -> None:
    for cls, weekend_higher in (("residential", True), ("commercial", False)):
        s = _class_mean(daily, frames, cls).loc["2024-03-01":"2024-06-30"]
        weekend = s[s.index.day_of_week >= 5].mean()
        weekday = s[s.index.day_of_week < 5].mean()
        assert (weekend > weekday) == weekend_higher, cls


def test_bills_follow_the_tariffs_for_clean_customers(frames: dict[str, pd.DataFrame]) -> None:
    bills = frames["bills"]
    tariffs = tariffs_table().to_pandas().set_index("tariff_code")
    cust = frames["customers"].set_index("cons_no")
    truth = frames["truth"]
    bad = set(
        truth[truth["kind"].isin(["bill_amount_mismatch", "dq_register_backwards"])]["entity"]
    )
    clean = bills[~bills["cons_no"].isin(bad)]
    t = tariffs.loc[clean["tariff_code"]].reset_index(drop=True)
    kwh = clean["kwh"].to_numpy()
    tiered = (
        t["price"] * np.minimum(kwh, t["tier2_kwh"])
        + t["tier2_price"] * np.clip(kwh - t["tier2_kwh"], 0, t["tier3_kwh"] - t["tier2_kwh"])
        + t["tier3_price"] * np.maximum(kwh - t["tier3_kwh"], 0)
    )
    energy = np.where(t["kind"] == "tiered", tiered, kwh * t["price"])
    capacity = (
        t["capacity_price"].fillna(0).to_numpy()
        * cust.loc[clean["cons_no"], "capacity_kva"].to_numpy()
    )
    expected = np.round(energy, 2) + np.round(capacity, 2)
    assert np.abs(clean["amount"].to_numpy() - expected).max() < 0.015
    assert (clean["tariff_code"] == "RES-T").any() and (clean["tariff_code"] == "IND-2").any()
    tiers = clean[clean["tariff_code"] == "RES-T"]["kwh"]
    assert (tiers > 400).any() and (tiers < 200).any()
    wrong = bills[
        bills["cons_no"].isin(set(truth[truth["kind"] == "bill_amount_mismatch"]["entity"]))
    ]
    assert len(wrong) > 0


def test_bill_kwh_matches_registers_and_daily_readings(
    daily: pd.DataFrame, frames: dict[str, pd.DataFrame]
) -> None:
    bills = frames["bills"]
    labelled = set(frames["truth"]["entity"])
    clean = bills[~bills["cons_no"].isin(labelled)]
    dial = (clean["end_reg"] - clean["start_reg"]) * clean["multiplier"]
    assert np.allclose(dial, clean["kwh"], rtol=0, atol=0.006)
    wide = daily.loc[daily.index.isin(clean["cons_no"])]
    month = pd.to_datetime(wide.columns).strftime("%Y-%m")
    monthly = wide.T.groupby(month).sum(min_count=1).T  # NaN where no reading at all
    complete = wide.notna().T.groupby(month).all().T
    merged = clean.set_index(["cons_no", "month"])[["kwh", "multiplier"]]
    sums = monthly.where(complete).stack().dropna().rename("sum")
    sums.index.names = ["cons_no", "month"]
    got = sums.to_frame().join(merged, how="inner")
    assert len(got) > 1000
    # registers read to 0.01: the billed kWh may differ from Σ daily by 0.01 × multiplier
    assert (
        np.abs(got["sum"] - got["kwh"]) <= 1e-5 * got["kwh"] + 0.01 * got["multiplier"] + 0.05
    ).all()


def test_area_supply_covers_metered_kwh_with_a_few_percent_loss(
    daily: pd.DataFrame, frames: dict[str, pd.DataFrame]
) -> None:
    cust = frames["customers"]
    truth = frames["truth"]
    faulty = truth[~truth["kind"].isin(LEGIT)]
    bad_areas = set(cust[cust["cons_no"].isin(faulty["entity"])]["area_id"]) | set(
        faulty[faulty["entity_kind"] == "area"]["entity"]
    )
    area_of = cust.set_index("cons_no")["area_id"]
    metered = daily.groupby(area_of.loc[daily.index].to_numpy()).sum(min_count=1)
    gaps = daily.isna() & daily.notna().cumsum(axis=1).gt(0)  # missing while reading at all
    incomplete = gaps.groupby(area_of.loc[daily.index].to_numpy()).any()
    supply = frames["area_supply"].pivot(index="area_id", columns="date", values="supply_kwh")
    supply = supply.reindex(columns=metered.columns)
    ok = supply.index[~supply.index.isin(bad_areas)]
    loss = (supply.loc[ok] - metered.loc[ok]) / supply.loc[ok]
    loss = loss.where(~incomplete.loc[ok] & (supply.loc[ok] > 0)).stack()
    assert len(loss) > 1000
    assert loss.min() > -1e-4
    assert loss.max() < 0.1
    assert 0.005 < loss.median() < 0.06


def test_payments_fall_due_on_the_15th_and_are_mostly_on_time(
    frames: dict[str, pd.DataFrame],
) -> None:
    pay = frames["payments"]
    due = pd.to_datetime(pay["due_date"])
    assert (due.dt.day == 15).all()
    late = (pd.to_datetime(pay["paid_date"]) - due).dt.days
    assert (late <= 0).mean() > 0.85
    assert pay["payment_id"].is_unique


def test_theft_raises_the_area_line_loss(
    daily: pd.DataFrame, frames: dict[str, pd.DataFrame]
) -> None:
    cust = frames["customers"].set_index("cons_no")
    truth = frames["truth"]
    thefts = truth[truth["kind"].str.startswith("theft_") & (truth["severity"] > 0.3)]
    # a multiplier left unchanged at a replacement moves its area's loss by design (a large
    # CT customer's doubled readings outweigh a home's theft): those areas are left out
    late = truth.loc[truth["kind"] == "multiplier_not_updated", "entity"]
    thefts = thefts[
        ~cust.loc[thefts["entity"], "area_id"].isin(cust.loc[late, "area_id"]).to_numpy()
    ]
    assert len(thefts) >= 50
    supply = frames["area_supply"].pivot(index="area_id", columns="date", values="supply_kwh")
    area_of = cust.loc[daily.index, "area_id"].to_numpy()
    metered = daily.fillna(0).groupby(area_of).sum()
    loss = ((supply - metered.reindex(columns=supply.columns)) / supply).T
    loss.index = pd.to_datetime(loss.index)
    rose = 0
    for row in thefts.itertuples():  # a few dozen labelled thieves
        series = loss[cust.loc[row.entity, "area_id"]]
        start = pd.Timestamp(row.start)
        before = series.loc[: start - pd.Timedelta(days=1)].median()
        after = series.loc[start : pd.Timestamp(row.end)].median()
        rose += after > before
    assert rose >= 0.9 * len(thefts)


def test_zero_anomaly_rates_give_an_empty_truth_table() -> None:
    config = DemoConfig(bureaus=1, customers=3000, days=60, seed=2, rates={})
    tables = generate_bureau(config, 0)
    assert tables["truth"].num_rows == 0
    readings = tables["readings"].to_pandas()
    assert (readings["kwh"].dropna() >= 0).all()
    assert not readings.duplicated(["cons_no", "date"]).any()
