"""The analyst notebooks' library: theme groups, tables and charts, on tiny frames and on a
tiny generated city (real DuckDB mart, real detectors)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from audit_lib.data.access import Mart
from audit_lib.data.quality import run_checks
from audit_lib.demo.generate import DemoConfig, generate_demo
from audit_lib.detect.run import DetectionRun
from audit_lib.errors import ConfigError, DataError
from audit_lib.themes.catalogue import CATALOGUE
from audit_lib.workflows import analysis as an
from audit_lib.workflows import analysis_charts as charts

REPO = Path(__file__).resolve().parents[2]
PERIOD = "2024-01..2024-05"


def test_theme_groups_hold_every_theme_once_within_one_family() -> None:
    grouped = [t for themes in an.THEME_GROUPS.values() for t in themes]
    assert sorted(grouped) == sorted(CATALOGUE)
    assert len(grouped) == len(set(grouped))
    families = {g: {CATALOGUE[t].family for t in ts} for g, ts in an.THEME_GROUPS.items()}
    assert families == {
        "theft": {"business"},
        "billing": {"business"},
        "line_loss": {"resource"},
        "data_quality": {"data_quality"},
    }
    assert an.group_themes("all") == tuple(CATALOGUE)
    with pytest.raises(ConfigError, match="unknown theme group 'theft2'"):
        an.group_themes("theft2")


def _findings() -> pd.DataFrame:
    rows = [
        ("arrears", "C1", 1.0, {"owed": 10.0}),
        ("arrears", "C2", 3.0, {"owed": 30.0}),
        ("arrears", "C3", 2.0, {"owed": 20.0}),
        ("area_line_loss", "A1", 0.2,
         {"worst_loss_rate": 0.2, "suspects": [{"cons_no": "C7", "corr": -0.8},
                                               {"cons_no": "C8", "corr": -0.5}]}),
        ("area_line_loss", "A2", 0.1, {"worst_loss_rate": -0.05, "suspects": []}),
    ]  # fmt: skip
    frame = pd.DataFrame(
        [(t, e, s, json.dumps(ev)) for t, e, s, ev in rows],
        columns=["theme_id", "entity", "score", "evidence"],
    )
    frame["reason_zh"] = "理由"
    frame["reason_en"] = "reason"
    frame["name"] = "张三"  # personal data in a frame never reaches the tables
    return frame


def test_theme_table_top_of_one_theme_with_evidence_columns() -> None:
    table = an.theme_table(_findings(), "arrears", top=2, evidence=True)
    assert table["entity"].tolist() == ["C2", "C3"]
    assert table["ev_owed"].tolist() == [30.0, 20.0]
    assert "name" not in table.columns
    assert an.theme_table(_findings(), "over_capacity").empty
    with pytest.raises(KeyError, match="unknown theme"):
        an.theme_table(_findings(), "arrear")


def test_loss_suspects_flatten_the_line_loss_evidence() -> None:
    suspects = an.loss_suspects(_findings())
    assert suspects.to_dict("list") == {
        "area_id": ["A1", "A1"],
        "worst_loss_rate": [0.2, 0.2],
        "cons_no": ["C7", "C8"],
        "corr": [-0.8, -0.5],
    }


def test_area_months_and_loss_classes() -> None:
    table = pd.DataFrame(
        {
            "area_id": ["A2", "A2", "A1", "A1"],
            "month": ["2024-01", "2024-02", "2024-01", "2024-02"],
            "loss_rate": [0.30, 0.02, 0.05, 0.5],
            "loss_class": ["high", "qualified", "qualified", "not_computable"],
        }
    )
    wide = an.area_months(table)
    assert wide.index.tolist() == ["A2", "A1"]
    assert wide.loc["A2"].tolist() == [30.0, 2.0]
    assert pd.isna(wide.loc["A1", "2024-02"])  # not computable: no rate shown
    classes = an.loss_classes(table)
    assert classes.loc["2024-01"].tolist() == [1, 1, 0, 0]
    assert classes.loc["2024-02"].tolist() == [1, 0, 0, 1]


def test_quality_without_truth_is_empty_and_says_so() -> None:
    run = DetectionRun(_findings(), hits={"arrears": 3})
    empty = an.load_truth("mart", str(Path("no") / "truth.parquet"), "YZ", PERIOD)
    assert empty.empty and list(empty.columns) == an.TRUTH_COLUMNS
    assert an.theme_quality(run, empty).empty
    assert an.kind_quality(run, empty).empty
    assert an.theft_quality(run, empty).empty
    texts = [t.get_text() for t in charts.quality_chart(an.theme_quality(run, empty)).axes[0].texts]
    assert texts == ["no truth table / 无真值表"]


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("city")
    generate_demo(
        out, DemoConfig(bureaus=1, customers=400, days=152, start=dt.date(2024, 1, 1), seed=5)
    )
    return out


@pytest.fixture(scope="module")
def theft_run(city: Path) -> DetectionRun:
    with threadpool_limits(1):
        return an.explore(str(city / "mart"), "YZ", PERIOD, "theft")


@pytest.mark.slow
def test_theft_ranking_ranks_every_scored_customer(theft_run: DetectionRun) -> None:
    table = an.theft_ranking_table(theft_run, top=30)
    assert len(table) == 30
    assert table["score"].is_monotonic_decreasing
    flagged = table[table["flagged"]]
    assert len(flagged) == theft_run.hits["theft_suspicion"]  # the top 1 % of ~400
    assert (
        flagged["reason_zh"].notna().all()
        and table.loc[~table["flagged"], "reason_zh"].isna().all()
    )
    assert not {"name", "phone", "id_no"} & set(table.columns)


@pytest.mark.slow
def test_customer_evidence_and_charts(theft_run: DetectionRun) -> None:
    top = an.pick_customer(theft_run)
    assert top == an.theft_ranking_table(theft_run, 1)["cons_no"].iloc[0]
    ev = an.customer_evidence(theft_run)
    assert ev["cons_no"].iloc[0] == top and ev["change_pct"].iloc[0] < -30  # a real drop
    assert an.top_evidence(theft_run, 3)["cons_no"].tolist() == (
        an.theft_ranking_table(theft_run, 3)["cons_no"].tolist()
    )
    series = an.customer_series(theft_run, top)
    assert series.index[0] >= pd.Timestamp("2024-01-01")  # no empty history before the mart
    fig = charts.evidence_chart(theft_run)
    assert top in fig.axes[0].get_title()
    assert len(charts.peer_chart(theft_run, top).axes[0].lines) == 2
    with pytest.raises(DataError, match="not in bureau YZ"):
        an.pick_customer(theft_run, "nobody")


@pytest.mark.slow
def test_period_dq_hits_keep_the_period(city: Path) -> None:
    mart = str(city / "mart")
    every = run_checks(Mart(mart), "YZ")
    march = an.period_dq_hits(mart, "YZ", "2024-03")
    first = pd.to_datetime(march["date"])
    last = pd.to_datetime(march["end"]).fillna(first)
    dated = first.notna()
    assert dated.any() and (first[dated] <= "2024-03-31").all()
    assert (last[dated] >= "2024-03-01").all()  # a run of days overlapping March counts
    undated = march[march["date"].isna()]
    assert undated["month"].isna().all() or (undated["month"].dropna() == "2024-03").all()
    assert 0 < len(march) < len(every)
    assert len(an.period_dq_hits(mart, "YZ", PERIOD)) == len(every)


@pytest.mark.slow
def test_line_loss_tables_and_evaluation(city: Path) -> None:
    mart = str(city / "mart")
    run = an.explore(mart, "YZ", PERIOD, "line_loss")
    table = an.area_loss_table(run)
    assert an.loss_limits(run)["high_loss"] == 0.08  # no theme_params: the catalogue's
    assert set(table["month"]) == {f"2024-0{m}" for m in range(1, 6)}
    worst = table.groupby("area_id")["loss_rate"].apply(lambda s: s.abs().max())
    assert table["area_id"].iloc[0] == worst.idxmax()
    assert (
        charts.area_loss_chart(run, table)
        .axes[0]
        .get_title()
        .endswith(worst.idxmax() + " / 台区日线损")
    )
    truth = an.load_truth(mart, "", "YZ", PERIOD)
    counts = an.truth_counts(truth).set_index("kind")
    assert counts.loc["wrong_multiplier", "themes"] == "multiplier_anomaly"
    quality = an.theme_quality(run, truth)
    assert quality["theme"].tolist() == ["repeated_complaints"]  # only the themes that ran
    kinds = an.kind_quality(run, truth)
    assert kinds[["theme", "kind"]].values.tolist() == [["repeated_complaints"] * 2]
    assert kinds["hits"].iloc[0] == quality["hits"].iloc[0]  # one kind: the theme's own hits
    assert run.context is not None  # the table starts from the run's own parameters
    run.context.overrides = {"area_line_loss": {"min_days": 10**4}}
    assert (an.area_loss_table(run)["loss_class"] == "not_computable").all()
    run.context.overrides = {"area_line_loss": {"high_loss": 0.0}}  # every positive loss high
    high = an.area_loss_table(run)
    assert (high.loc[high["loss_rate"] > 0, "loss_class"] == "high").all()
    assert charts.loss_rate_chart(high, an.loss_limits(run)).axes[0].get_legend_handles_labels()[
        1
    ] == ["high / 高损 0%", "negative / 负损 -1%"]
