"""Every injected fault is in the truth table, and its window matches the data."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from audit_lib.demo.generate import DemoConfig, generate_bureau
from audit_lib.demo.generate.tariffs import CATALOGUE
from audit_lib.data.schema import (
    CUSTOMER_CLASSES,
    CUSTOMER_STATUSES,
    METER_EVENT_CODES,
    TRUTH_KINDS,
)

CONFIG = DemoConfig(bureaus=1, customers=8000, days=400, start=dt.date(2024, 3, 1), seed=23)
VALID_CLASSES = {str(row[0]): set(str(row[4]).split(",")) for row in CATALOGUE}


@pytest.fixture(scope="module")
def f() -> dict[str, pd.DataFrame]:
    return {name: t.to_pandas() for name, t in generate_bureau(CONFIG, 0).items()}


@pytest.fixture(scope="module")
def daily(f: dict[str, pd.DataFrame]) -> pd.DataFrame:
    r = f["readings"].drop_duplicates(["cons_no", "date"])
    wide = r.pivot(index="cons_no", columns="date", values="kwh")
    wide.columns = pd.to_datetime(wide.columns)
    return wide


def _truth(f: dict[str, pd.DataFrame], kind: str) -> pd.DataFrame:
    t = f["truth"]
    out = t[t["kind"] == kind].copy()
    out["start"] = pd.to_datetime(out["start"])
    out["end"] = pd.to_datetime(out["end"])
    return out


def _clean(f: dict[str, pd.DataFrame]) -> pd.Index:
    cust = f["customers"]
    return pd.Index(cust[~cust["cons_no"].isin(f["truth"]["entity"])]["cons_no"])


def test_every_truth_kind_is_present_at_low_rates(f: dict[str, pd.DataFrame]) -> None:
    counts = f["truth"]["kind"].value_counts()
    missing = set(TRUTH_KINDS) - set(counts.index)
    assert not missing
    assert (counts / len(f["customers"]) < 0.015).all()
    assert not f["truth"].duplicated(["entity", "kind", "start"]).any()


def test_theft_lowers_metered_kwh_after_its_start(
    f: dict[str, pd.DataFrame], daily: pd.DataFrame
) -> None:
    cls = f["customers"].set_index("cons_no")["cust_class"]
    clean = _clean(f)
    peer = daily.loc[clean].groupby(cls.loc[clean]).mean()  # class mean per day
    thefts = f["truth"][f["truth"]["kind"].str.startswith("theft_")]
    assert len(thefts) >= 25
    dropped = 0
    for row in thefts.itertuples():  # a few dozen labelled thieves, not all customers
        ratio = daily.loc[row.entity] / peer.loc[cls[row.entity]]
        start, end = pd.Timestamp(row.start), pd.Timestamp(row.end)
        before = ratio.loc[: start - pd.Timedelta(days=1)].median()
        during = ratio.loc[start:end].mean()
        dropped += during < 0.9 * before
    assert dropped >= 0.9 * len(thefts)


def test_some_thefts_leave_a_cover_opened_event_but_not_all(f: dict[str, pd.DataFrame]) -> None:
    thefts = f["truth"][f["truth"]["kind"].str.startswith("theft_")]
    ev = f["meter_events"]
    ev = ev[(ev["code"] == "ERC37") & ev["cons_no"].isin(thefts["entity"])]
    share = ev["cons_no"].nunique() / len(thefts)
    assert 0.15 < share < 0.7


def test_zero_consumption_window_has_zeros(f: dict[str, pd.DataFrame], daily: pd.DataFrame) -> None:
    for row in _truth(f, "zero_while_active").itertuples():
        window = daily.loc[row.entity, row.start : row.end]
        assert ((window == 0) | window.isna()).all()
        assert daily.loc[row.entity, : row.start - pd.Timedelta(days=1)].sum() > 0


def test_legit_changes_are_labelled_and_look_like_drops(
    f: dict[str, pd.DataFrame], daily: pd.DataFrame
) -> None:
    vac = _truth(f, "legit_vacancy")
    assert len(vac) > 10
    for row in vac.itertuples():
        series = daily.loc[row.entity]
        inside = series.loc[row.start : row.end].mean()
        assert inside < 0.3 * series.drop(series.loc[row.start : row.end].index).mean()
    cust = f["customers"].set_index("cons_no")
    moved_in = _truth(f, "legit_move_in")
    assert (
        pd.to_datetime(cust.loc[moved_in["entity"], "open_date"]).to_numpy()
        == moved_in["start"].to_numpy()
    ).all()
    for row in moved_in.head(20).itertuples():
        assert daily.loc[row.entity, : row.start - pd.Timedelta(days=1)].isna().all()
    moved_out = _truth(f, "legit_move_out")
    assert (cust.loc[moved_out["entity"], "status"] == "closed").all()
    assert cust.loc[moved_out["entity"], "close_date"].notna().all()


def test_meter_replacement_gives_a_second_meter(f: dict[str, pd.DataFrame]) -> None:
    rep = pd.concat([_truth(f, "legit_meter_replacement"), _truth(f, "multiplier_not_updated")])
    meters = f["meters"]
    per = meters.groupby("cons_no").size()
    assert set(per[per == 2].index) == set(rep["entity"])
    second = meters[meters["meter_id"].str.endswith("02")].set_index("cons_no")
    assert (
        pd.to_datetime(second.loc[rep["entity"], "install_date"]).to_numpy()
        == rep["start"].to_numpy()
    ).all()


def test_a_multiplier_not_updated_steps_the_readings_at_the_replacement(
    f: dict[str, pd.DataFrame], daily: pd.DataFrame
) -> None:
    late = _truth(f, "multiplier_not_updated")
    meters = f["meters"].set_index("meter_id")
    assert len(late) >= 5
    errors = []
    for row in late.itertuples():
        recorded = float(row.detail.split("recorded ")[1].split(",")[0])
        physical = float(row.detail.split("physical ")[1].split(" ")[0])
        assert physical != recorded  # a CT of another ratio; the record kept the old one
        assert meters.loc[f"M{row.entity}02", "multiplier"] == recorded
        assert meters.loc[f"M{row.entity}01", "multiplier"] == recorded
        day, one = row.start, pd.Timedelta(days=1)
        assert np.isnan(daily.loc[row.entity, day + one])  # the fitting's gap
        before = daily.loc[row.entity, day - 14 * one : day - one].median()
        after = daily.loc[row.entity, day + 3 * one : day + 16 * one].median()
        errors.append(abs(np.log(after / before / (recorded / physical))))
    # the customer's own use moves too (a season, the Spring Festival): most, not all
    assert np.median(errors) < np.log(1.15) and np.mean(np.array(errors) < np.log(1.3)) >= 0.8


def test_the_late_kind_leaves_every_other_draw_as_it_was() -> None:
    """multiplier_not_updated draws from a stream of its own: switched off, the rest of the
    bureau is the same customer for customer (its customers apart)."""
    rates = {**CONFIG.rates, "multiplier_not_updated": 0.0}
    small = DemoConfig(bureaus=1, customers=3000, days=200, start=CONFIG.start, seed=31)
    without = generate_bureau(replace(small, rates=rates), 0)
    with_it = generate_bureau(small, 0)
    truth = with_it["truth"].to_pandas()
    late = set(truth.loc[truth["kind"] == "multiplier_not_updated", "entity"])
    assert late
    pd.testing.assert_frame_equal(
        truth[truth["kind"] != "multiplier_not_updated"].reset_index(drop=True),
        without["truth"].to_pandas(),
    )
    for name in ("readings", "bills", "payments", "tickets", "customers"):
        a, b = (t[name].to_pandas() for t in (with_it, without))
        key = "cons_no" if "cons_no" in a else None
        if key:
            a, b = a[~a[key].isin(late)], b[~b[key].isin(late)]
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_data_quality_faults_are_where_the_truth_says(
    f: dict[str, pd.DataFrame], daily: pd.DataFrame
) -> None:
    readings, cust = f["readings"], f["customers"]
    neg = _truth(f, "dq_negative_reading")
    negative = readings[readings["kwh"] < 0]
    assert set(negative["cons_no"]) == set(neg["entity"])
    dup = readings[readings.duplicated(["cons_no", "date"], keep=False)]
    orphans = set(_truth(f, "dq_orphan")["entity"])
    assert set(dup["cons_no"]) == set(_truth(f, "dq_duplicate_reading")["entity"])
    assert orphans and not orphans & set(cust["cons_no"])
    assert orphans <= set(readings["cons_no"])
    assert not (set(readings["cons_no"]) - set(cust["cons_no"])) - orphans
    for row in _truth(f, "dq_missing_readings").query("entity_kind == 'customer'").itertuples():
        assert daily.loc[row.entity, row.start : row.end].isna().all()
    bad = set(_truth(f, "dq_bad_code")["entity"])
    outside = cust[
        ~cust["cust_class"].isin(CUSTOMER_CLASSES) | ~cust["status"].isin(CUSTOMER_STATUSES)
    ]
    events = f["meter_events"]
    odd_events = events[~events["code"].isin(list(METER_EVENT_CODES))]
    assert len(outside) and len(odd_events)
    assert set(outside["cons_no"]) | set(odd_events["cons_no"]) == bad
    supply = f["area_supply"]
    gaps = _truth(f, "dq_missing_readings").query("entity_kind == 'area'")
    assert len(gaps) > 0
    assert set(supply[supply["supply_kwh"].isna()]["area_id"]) == set(gaps["entity"])


def test_register_backwards_comes_with_an_erc27_event(f: dict[str, pd.DataFrame]) -> None:
    bills, ev = f["bills"], f["meter_events"]
    back = _truth(f, "dq_register_backwards")
    replaced = set(_truth(f, "legit_meter_replacement")["entity"])
    replaced |= set(_truth(f, "multiplier_not_updated")["entity"])  # a new meter starts at 0
    down = bills[(bills["end_reg"] < bills["start_reg"]) & ~bills["cons_no"].isin(replaced)]
    assert set(down["cons_no"]) == set(back["entity"])
    erc27 = ev[ev["code"] == "ERC27"]
    assert set(erc27["cons_no"]) == set(back["entity"])
    months = back.assign(month=back["start"].dt.strftime("%Y-%m"))
    assert set(zip(months["entity"], months["month"], strict=True)) == set(
        zip(down["cons_no"], down["month"], strict=True)
    )


def test_tariff_multiplier_and_capacity_faults(f: dict[str, pd.DataFrame]) -> None:
    cust = f["customers"].set_index("cons_no")
    ok_class = cust["cust_class"].isin(CUSTOMER_CLASSES)
    valid = [
        c in VALID_CLASSES[t] for c, t in zip(cust["cust_class"], cust["tariff_code"], strict=True)
    ]
    invalid = set(cust.index[~np.array(valid) & ok_class])
    assert invalid == set(_truth(f, "tariff_invalid_for_class")["entity"])

    wrong = _truth(f, "wrong_multiplier")
    meters = f["meters"].drop_duplicates("cons_no").set_index("cons_no")
    recorded = wrong["detail"].str.extract(r"recorded ([\d.]+)")[0].astype(float).to_numpy()
    assert (meters.loc[wrong["entity"], "multiplier"].to_numpy() == recorded).all()

    bills = f["bills"].join(cust["capacity_kva"], on="cons_no")
    over = bills[bills["max_demand_kw"] > bills["capacity_kva"]]
    assert set(over["cons_no"]) == set(_truth(f, "over_capacity")["entity"])


def test_arrears_and_repeated_complaints(f: dict[str, pd.DataFrame]) -> None:
    bills, pay = f["bills"], f["payments"]
    arrears = _truth(f, "arrears")
    paid = bills.merge(pay[["cons_no", "month", "paid_date", "due_date"]], how="left")
    paid["late"] = (pd.to_datetime(paid["paid_date"]) - pd.to_datetime(paid["due_date"])).dt.days
    last_due = pd.Timestamp(CONFIG.end) - pd.Timedelta(days=45)
    settled = paid[pd.to_datetime(paid["month"]) < last_due]
    bad = settled[settled["paid_date"].isna() | (settled["late"] > 30)]
    bad = bad[bad["amount"] > 0]
    assert set(bad["cons_no"]) <= set(arrears["entity"])
    assert len(set(bad["cons_no"])) > 0.8 * len(arrears)
    others = paid[~paid["cons_no"].isin(arrears["entity"])]
    assert others["late"].max() <= 10  # ordinary customers are at most a few days late

    tickets = f["tickets"]
    complaints = tickets[tickets["kind"] == "complaint"].groupby("cons_no").size()
    repeated = set(_truth(f, "repeated_complaints")["entity"])
    assert set(complaints[complaints >= 3].index) == repeated
