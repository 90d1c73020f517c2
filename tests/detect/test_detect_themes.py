"""One contract test over every theme detector, plus targeted checks of the rule themes.

The data set is the project's own demo generator at a small size, with rates raised so every
injected kind appears; the truth table tells what each theme should find.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit_lib.data.access import Mart
from audit_lib.data.schema import DQ_KINDS, FINDINGS
from audit_lib.demo.generate import DEFAULT_RATES, DemoConfig, generate_demo
from audit_lib.detect.context import DetectionContext
from audit_lib.detect.evaluate import THEME_KINDS, kind_recall, theme_scores, truth_in_period
from audit_lib.detect.run import detect
from audit_lib.detect.scoring.replacement import explained_days
from audit_lib.detect.themes import THEME_DETECTORS
from audit_lib.detect.themes.theft_suspicion import theft_scores
from audit_lib.errors import ConfigError, DataError
from audit_lib.themes.catalogue import CATALOGUE, get_theme

START, END = dt.date(2024, 1, 1), dt.date(2024, 9, 30)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("city")
    rates = {k: min(0.02, v * 4) for k, v in DEFAULT_RATES.items()}
    # at four times its rate, multipliers left unchanged at a replacement (large CT customers
    # whose readings halve or double) unbalance so many of the 20 areas that fewer than half
    # of the area-months stay qualified (0.41)
    rates["multiplier_not_updated"] = DEFAULT_RATES["multiplier_not_updated"]
    config = DemoConfig(bureaus=1, customers=1500, days=274, start=START, seed=11, rates=rates)
    generate_demo(out, config)
    return out


@pytest.fixture(scope="module")
def ctx(city: Path) -> DetectionContext:
    return DetectionContext(Mart(city / "mart"), "YZ", START, END)


@pytest.fixture(scope="module")
def truth(city: Path) -> pd.DataFrame:
    return truth_in_period(pd.read_parquet(city / "truth.parquet"), "YZ", START, END)


def test_every_catalogue_theme_has_a_detector() -> None:
    assert set(THEME_DETECTORS) == set(CATALOGUE)


@pytest.mark.parametrize("theme_id", sorted(THEME_DETECTORS))
def test_theme_detector_contract(theme_id: str, ctx: DetectionContext) -> None:
    theme = get_theme(theme_id)
    hits = THEME_DETECTORS[theme_id](ctx, theme)
    again = THEME_DETECTORS[theme_id](ctx, theme)
    if hits.empty:
        assert again.empty
        return
    for col in ("entity", "score", "reason_zh", "reason_en", "evidence"):
        assert col in hits.columns, col
    assert hits["entity"].is_unique
    assert np.isfinite(hits["score"].to_numpy(dtype=float)).all()
    assert (hits["reason_zh"].str.len() > 0).all() and (hits["reason_en"].str.len() > 0).all()
    assert hits["reason_zh"].str.contains(r"[\u4e00-\u9fff]").all()  # Chinese reason
    first = hits.set_index("entity")["score"].sort_index()
    second = again.set_index("entity")["score"].sort_index()
    pd.testing.assert_series_equal(first, second)  # same data → same scores
    known = set(ctx.customers["cons_no"]) | set(ctx.mart.areas("YZ")["area_id"])
    assert set(hits["entity"]) <= known | set(hits["entity"][hits["entity"].str.len() > 0])


@pytest.mark.parametrize(
    "theme_id",
    [
        "zero_consumption",
        "tariff_misapplication",
        "over_capacity",
        "arrears",
        "repeated_complaints",
    ],
)
def test_rule_theme_finds_its_injected_kind(
    theme_id: str, ctx: DetectionContext, truth: pd.DataFrame
) -> None:
    theme = get_theme(theme_id)
    findings = detect(ctx.mart, "YZ", START, END, [theme_id]).findings
    row = theme_scores(findings, truth).set_index("theme").loc[theme_id]
    assert row["injected"] > 0
    assert row["recall"] >= 0.9, row
    assert row["precision"] >= 0.9, row
    assert THEME_KINDS[theme.id]


def test_detect_returns_findings_contract(ctx: DetectionContext) -> None:
    run = detect(ctx.mart, "YZ", START, END, ["zero_consumption", "arrears"], run_id="r1")
    f = run.findings
    assert list(f.columns) == FINDINGS.names
    assert (f["run_id"] == "r1").all() and (f["bureau"] == "YZ").all()
    assert f["finding_id"].is_unique
    assert all(isinstance(json.loads(e), dict) for e in f["evidence"])
    assert set(run.summary()["theme"]) == {"zero_consumption", "arrears"}


def test_zero_consumption_does_not_flag_vacancies(
    ctx: DetectionContext, truth: pd.DataFrame
) -> None:
    hits = THEME_DETECTORS["zero_consumption"](ctx, get_theme("zero_consumption"))
    vacant = set(truth.loc[truth["kind"] == "legit_vacancy", "entity"])
    assert vacant, "the fixture should contain vacancies"
    assert not (set(hits["entity"]) & vacant)


def test_line_loss_classes_cover_every_area_month(ctx: DetectionContext) -> None:
    from audit_lib.data.balance import area_balance, monthly_loss

    table = monthly_loss(ctx, get_theme("area_line_loss").params, area_balance(ctx))
    n_areas = ctx.mart.areas("YZ")["area_id"].nunique()
    assert len(table) == n_areas * 9
    assert set(table["loss_class"]) <= {"qualified", "high", "negative", "not_computable"}
    qualified = table[table["loss_class"] == "qualified"]["loss_rate"]
    assert qualified.between(-0.01, 0.08).all()
    assert (table["loss_class"] == "qualified").mean() > 0.5


def test_unknown_theme_and_bad_period_are_clear_errors(ctx: DetectionContext) -> None:
    with pytest.raises(ConfigError, match="unknown theme 'nope'"):
        detect(ctx.mart, "YZ", START, END, ["nope"])
    with pytest.raises(DataError, match="ends before it starts"):
        DetectionContext(ctx.mart, "YZ", END, START)


def test_theft_theme_leaves_zero_runs_to_the_zero_theme(
    ctx: DetectionContext, truth: pd.DataFrame
) -> None:
    zero = THEME_DETECTORS["zero_consumption"](ctx, get_theme("zero_consumption"))
    scores = theft_scores(ctx)
    thieves = set(truth.loc[truth["kind"].str.startswith("theft"), "entity"])
    stopped = set(zero["entity"]) - thieves
    assert stopped  # the zero theme has customers of its own
    top = set(scores.head(max(len(thieves), 1))["cons_no"])
    assert not top & stopped  # ... and the theft ranking does not list them again
    assert scores["score"].between(0, 1).all() and scores["rank"].is_monotonic_increasing
    alarmed = scores[scores["alarms_at_drop"] != ""]
    assert alarmed["alarms_at_drop"].str.fullmatch(r"ERC3[07](,ERC3[07])?").all()


def test_theft_theme_dates_its_findings_as_the_full_scores_do(ctx: DetectionContext) -> None:
    # the theme finds the step day only for its own findings and the alarmed customers;
    # the days and the ranking are those of the full scores
    found = THEME_DETECTORS["theft_suspicion"](ctx, get_theme("theft_suspicion"))
    full = theft_scores(ctx).set_index("cons_no")
    evidence = found["evidence"]  # dicts before make_findings turns them into JSON
    step = evidence.map(lambda e: e["step_date"]).to_numpy()
    assert (step != "").any()
    np.testing.assert_array_equal(step, full.loc[found["entity"], "step_date"].to_numpy())
    np.testing.assert_array_equal(
        evidence.map(lambda e: e["rank"]).to_numpy(), full.loc[found["entity"], "rank"].to_numpy()
    )


def test_theft_alarm_before_the_period_corroborates_a_drop_there(city: Path) -> None:
    # the matrix reaches back before the period: an alarm at a drop there counts too
    late = DetectionContext(Mart(city / "mart"), "YZ", dt.date(2024, 5, 1), END, history_days=121)
    assert late.load_start == START
    events = late.loaded_meter_events
    assert len(late.meter_events) < len(events) and events["time"].min() < pd.Timestamp(late.start)
    scores = theft_scores(late)
    early = scores[(scores["alarms_at_drop"] != "") & (scores["step_date"] < "2024-04-15")]
    assert not early.empty  # its alarm lies more than two weeks before the period
    before = events[events["time"] < pd.Timestamp(late.start)]
    assert early["cons_no"].isin(before["cons_no"]).all()


def test_an_absurd_reading_is_data_quality_not_consumption(
    ctx: DetectionContext, truth: pd.DataFrame
) -> None:
    absurd = set(truth.loc[truth["kind"] == "dq_absurd_reading", "entity"])
    assert len(absurd) >= 3, "the fixture should contain absurd readings"
    themes = ["data_quality", "consumption_drop", "peer_low", "over_capacity", "theft_suspicion"]
    found = detect(ctx.mart, "YZ", START, END, themes).findings
    by_theme = found.groupby("theme_id")["entity"].agg(set)
    assert absurd <= by_theme["data_quality"]
    recall = kind_recall(found, truth).set_index(["theme", "kind"])["recall"]
    assert recall["data_quality", "dq_absurd_reading"] == 1.0
    assert set(recall["data_quality"].index) == set(truth["kind"]) & set(DQ_KINDS)
    quality = found[(found["theme_id"] == "data_quality") & found["entity"].isin(absurd)]
    assert quality["reason_zh"].str.contains("读数异常偏大").all(), quality["reason_zh"]
    for theme in themes[1:]:  # a register jump is neither a drop nor a peak of demand
        assert not absurd & by_theme.get(theme, set()), theme
    scored = theft_scores(ctx).set_index("cons_no")
    noted = scored.loc[sorted(absurd & set(scored.index)), "reason_en"]
    assert len(noted) and noted.str.contains("1 absurd daily reading").all(), noted


def test_a_runs_overrides_reach_what_the_theft_theme_leaves_to_others(
    city: Path, ctx: DetectionContext, truth: pd.DataFrame
) -> None:
    # the theft score leaves the zero theme's runs and the multiplier theme's confirmed steps
    # out, by those themes' parameters in this run, not the catalogue's
    changed = {
        "multiplier_anomaly": {"step_min_z": -1e9},  # any area change confirms a step
        "zero_consumption": {"min_zero_days": 10**4},  # no run is long enough
    }
    other = DetectionContext(Mart(city / "mart"), "YZ", START, END, overrides=changed)
    assert other.theme("zero_consumption").param("min_zero_days") == 10**4
    assert len(explained_days(other)[0]) > len(explained_days(ctx)[0])
    zero = THEME_DETECTORS["zero_consumption"](ctx, get_theme("zero_consumption"))
    thieves = set(truth.loc[truth["kind"].str.startswith("theft"), "entity"])
    stopped = set(zero["entity"]) - thieves
    top = set(theft_scores(other).head(max(len(thieves), 1))["cons_no"])
    assert top & stopped  # no run left to the zero theme: its stopped meters rank as drops
