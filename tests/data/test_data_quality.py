"""Data-quality checks over a real Parquet mart: a clean data set passes, injected faults are found."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from mart_fixture import tiny_dataset

from audit_lib.cli import main
from audit_lib.data.access import Mart
from audit_lib.data.mart import write_table
from audit_lib.data.quality import CHECKS, hits_in_period, run_check, run_checks, summarize
from audit_lib.errors import ConfigError


def write_mart(root: Path, tables: dict[str, pd.DataFrame]) -> Mart:
    for name, frame in tables.items():
        write_table(root, name, pa.Table.from_pandas(frame, preserve_index=False))
    return Mart(root)


@pytest.fixture
def clean(tmp_path: Path) -> dict[str, pd.DataFrame]:
    tables = {k: v.to_pandas() for k, v in tiny_dataset(n=12, days=59).items()}
    tables["readings"]["kwh"] = tables["readings"]["kwh"].fillna(1.0)  # no gaps: a clean set
    return tables


def test_clean_data_passes_every_check(clean: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    with write_mart(tmp_path / "mart", clean) as m:
        hits = run_checks(m)
    assert len(hits) == 0, hits
    assert list(summarize(hits).hits) == [0] * len(CHECKS)


def test_each_injected_fault_is_found_once(clean: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    t = clean
    r = t["readings"]
    yz = r[r.bureau == "YZ"]
    c_neg, c_dup, c_gap = yz.cons_no.unique()[[0, 1, 2]]
    # negative reading
    r.loc[(r.cons_no == c_neg) & (r.date == "2025-01-10"), "kwh"] = -4.0
    # duplicated reading
    dup = r[(r.cons_no == c_dup) & (r.date == "2025-02-03")]
    # 7 missing days in January (rows removed), and an orphan reading
    gap = (r.cons_no == c_gap) & r.date.between("2025-01-11", "2025-01-17")
    orphan = dup.assign(cons_no="1999999999")
    r = pd.concat([r[~gap], dup, orphan], ignore_index=True)
    r.loc[(r.cons_no == c_neg) & (r.date == "2025-01-10"), "kwh"] = -4.0
    c_abs = yz.cons_no.unique()[4]  # a shifted decimal: 2,000 × its median day
    own = r.cons_no == c_abs
    r.loc[own & (r.date == "2025-02-20"), "kwh"] = max(2000.0, 2000 * r.loc[own, "kwh"].median())
    t["readings"] = r
    a = t["area_supply"]  # a 4-day hole in one area's supply, across a month end
    t["area_supply"] = a[~((a.area_id == "YZ-A2") & a.date.between("2025-01-30", "2025-02-02"))]
    b = t["bills"]
    i_back = b.index[(b.bureau == "YZ") & (b.month == "2025-01")][3]
    b.loc[i_back, ["start_reg", "end_reg"]] = [500.0, 400.0]
    b.loc[i_back, "kwh"] = -100.0 * b.loc[i_back, "multiplier"]
    i_mis = b.index[(b.bureau == "YZ") & (b.month == "2025-02")][4]
    b.loc[i_mis, "kwh"] = b.loc[i_mis, "kwh"] * 2 + 10
    b.loc[b.index[(b.bureau == "YZ") & (b.month == "2025-02")][5], "tariff_code"] = "XXX"
    c = t["customers"]
    c.loc[c.index[(c.bureau == "YZ")][6], "area_id"] = "YZ-A404"
    c.loc[c.index[(c.bureau == "YZ")][7], "cust_class"] = "martian"
    e = t["meter_events"]
    e.loc[e.index[e.bureau == "YZ"][0], "code"] = "ERC99"
    with write_mart(tmp_path / "mart", t) as m:
        hits = run_checks(m, "YZ")
        other = run_checks(m, "JB")
    counts = summarize(hits).set_index("check").hits.to_dict()
    assert counts == {"missing_readings": 1, "missing_supply": 1, "negative_readings": 1,
                      "absurd_readings": 1, "duplicate_readings": 1,
                      "register_backwards": 1, "bill_kwh_mismatch": 1, "orphans": 2,
                      "bad_codes": 3}  # fmt: skip
    by = {k: set(g.entity) for k, g in hits.groupby("check")}
    assert by["negative_readings"] == {c_neg} and by["duplicate_readings"] == {c_dup}
    absurd_hit = hits[hits.check == "absurd_readings"].iloc[0]
    assert absurd_hit.entity == c_abs and absurd_hit.date == pd.Timestamp("2025-02-20")
    assert "异常偏大" in absurd_hit.detail and "absurd daily kWh" in absurd_hit.detail
    assert by["missing_readings"] == {c_gap} and by["missing_supply"] == {"YZ-A2"}
    missing = hits[hits.check.str.startswith("missing")].set_index("entity")
    assert missing.loc[c_gap, "date"] == pd.Timestamp("2025-01-11")
    assert "连续 7 天" in missing.loc[c_gap, "detail"]
    assert (
        missing.loc["YZ-A2", "entity_kind"] == "area" and "4 days" in missing.loc["YZ-A2", "detail"]
    )
    assert by["orphans"] == {"1999999999", "YZ-A404"}
    assert by["register_backwards"] == {b.loc[i_back, "cons_no"]}
    assert by["bill_kwh_mismatch"] == {b.loc[i_mis, "cons_no"]}
    assert len(other) == 0
    assert set(hits.columns) >= {"entity", "check", "date", "month", "detail"}


def test_missing_readings_threshold_and_unknown_names(
    clean: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    r = clean["readings"]
    gap = (r.cons_no == r.cons_no.iloc[0]) & r.date.between("2025-02-01", "2025-02-03")
    clean["readings"] = r[~gap]
    with write_mart(tmp_path / "mart", clean) as m:
        assert len(run_check(m, "missing_readings", min_missing_days=4)) == 0
        assert len(run_check(m, "missing_readings")) == 1  # 3 days: the default threshold
        with pytest.raises(ConfigError, match="no_such"):
            run_check(m, "no_such_check")
        with pytest.raises(ConfigError, match="wobble"):
            run_check(m, "orphans", wobble=1)


def test_checks_skip_tables_the_mart_lacks(clean: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    with write_mart(tmp_path / "mart", {"readings": clean["readings"]}) as m:
        assert len(run_check(m, "orphans")) == 0
        assert len(run_check(m, "negative_readings")) == 0


def test_cli_dq_prints_counts(
    clean: dict[str, pd.DataFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean["readings"].loc[0, "kwh"] = -1.0
    write_mart(tmp_path / "mart", clean).close()
    main(
        [
            "dq",
            "--mart",
            str(tmp_path / "mart"),
            "--bureau",
            "YZ",
            "--out",
            str(tmp_path / "hits.csv"),
        ]
    )
    out = capsys.readouterr().out
    assert "negative_readings" in out and "负电量" in out
    assert len(pd.read_csv(tmp_path / "hits.csv")) >= 1


@pytest.mark.slow
def test_demo_data_passes_except_the_injected_faults(tmp_path: Path) -> None:
    """Generated demo data: every hit is an injected fault of the truth table, and every
    injected data-quality fault the checks cover is hit."""
    import datetime as dt

    from audit_lib.demo.generate import DemoConfig, generate_demo

    config = DemoConfig(bureaus=1, customers=4000, days=120, start=dt.date(2024, 5, 1), seed=11)
    generate_demo(tmp_path / "demo", config)
    truth = pd.read_parquet(tmp_path / "demo" / "truth.parquet")
    with Mart(tmp_path / "demo" / "mart") as m:
        hits = run_checks(m)
    hits = hits.replace({"check": {"missing_supply": "missing_readings"}})
    expected = {
        "negative_readings": {"dq_negative_reading"},
        "absurd_readings": {"dq_absurd_reading"},
        "duplicate_readings": {"dq_duplicate_reading"},
        "register_backwards": {"dq_register_backwards"},
        "orphans": {"dq_orphan"},
        "bad_codes": {"dq_bad_code"},
        "missing_readings": {"dq_missing_readings"},
    }
    for check, kinds in expected.items():
        found = set(hits.loc[hits.check == check, "entity"])
        injected = set(truth.loc[truth.kind.isin(kinds), "entity"])
        assert found == injected, (
            check,
            sorted(found - injected)[:5],
            sorted(injected - found)[:5],
        )
    # a bill whose kWh disagrees with its registers belongs to some injected fault
    mismatch = set(hits.loc[hits.check == "bill_kwh_mismatch", "entity"])
    assert mismatch <= set(truth.entity)


def test_missing_runs_respects_open_and_close_days() -> None:
    import numpy as np

    from audit_lib.data.gaps import missing_runs

    nan = np.nan
    values = np.array(
        [
            [nan, nan, nan, 1, 1, nan, nan, nan, nan, 1],  # runs at 0..2 and 5..8
            [nan, nan, nan, nan, 1, 1, 1, nan, nan, nan],  # opened on day 2, closed after 8
            [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
        ],
        dtype=np.float32,
    )
    rows, starts, lengths = missing_runs(values, np.array([0, 2, 0]), np.array([9, 8, 9]), 3)
    assert list(zip(rows, starts, lengths, strict=True)) == [(0, 0, 3), (0, 5, 4)]
    rows, starts, lengths = missing_runs(values, np.array([0, 2, 0]), np.array([9, 8, 9]), 2)
    assert list(zip(rows, starts, lengths, strict=True)) == [
        (0, 0, 3),
        (0, 5, 4),
        (1, 2, 2),
        (1, 7, 2),
    ]


def test_hits_carry_the_days_they_concern(clean: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    r = clean["readings"]
    c_neg, c_gap = r.loc[r.bureau == "YZ", "cons_no"].unique()[[0, 1]]
    r.loc[(r.cons_no == c_neg) & (r.date == "2025-01-10"), "kwh"] = -4.0
    orphan = r[(r.cons_no == c_neg) & r.date.between("2025-01-05", "2025-01-08")]
    gap = (r.cons_no == c_gap) & r.date.between("2025-01-20", "2025-01-24")
    clean["readings"] = pd.concat([r[~gap], orphan.assign(cons_no="1999999999")])
    a = clean["area_supply"]  # one day without the area's supply
    clean["area_supply"] = a[~((a.area_id == "YZ-A2") & (a.date == "2025-02-10"))]
    c = clean["customers"]
    c.loc[c.index[c.bureau == "YZ"][7], "cust_class"] = "martian"
    with write_mart(tmp_path / "mart", clean) as m:
        hits = run_checks(m, "YZ").set_index("entity")
        assert len(run_check(m, "missing_supply", "YZ", min_missing_supply_days=2)) == 0
    days = hits[["date", "end"]].astype("datetime64[ns]")
    assert tuple(days.loc[c_neg]) == (pd.Timestamp("2025-01-10"),) * 2
    assert tuple(days.loc["1999999999"]) == (pd.Timestamp("2025-01-05"), pd.Timestamp("2025-01-08"))
    assert tuple(days.loc[c_gap]) == (pd.Timestamp("2025-01-20"), pd.Timestamp("2025-01-24"))
    assert tuple(days.loc["YZ-A2"]) == (pd.Timestamp("2025-02-10"),) * 2  # a single day counts
    assert hits.loc["1999999999", "month"] == "2025-01"
    bad = hits[hits.check == "bad_codes"]
    assert bad["date"].isna().all() and bad["month"].isna().all()  # master data: no period


def test_hits_in_period_keeps_what_touches_the_period() -> None:
    day = pd.Timestamp
    hits = pd.DataFrame(
        {
            "entity": ["before", "straddles", "inside", "after", "bill_in", "bill_out", "code"],
            "date": [day("2025-01-02"), day("2025-01-30"), day("2025-02-10"), day("2025-03-01"),
                     None, None, None],
            "end": [day("2025-01-31"), day("2025-02-02"), None, day("2025-03-02"),
                    None, None, None],
            "month": ["2025-01", "2025-01", "2025-02", "2025-03", "2025-02", "2025-01", None],
        }
    )  # fmt: skip
    kept = hits_in_period(hits, dt.date(2025, 2, 1), dt.date(2025, 2, 28))
    assert list(kept.entity) == ["straddles", "inside", "bill_in", "code"]
    assert list(hits_in_period(hits, dt.date(2025, 3, 2), dt.date(2025, 3, 9)).entity) == [
        "after",  # its last day is the period's first
        "code",
    ]
    assert len(hits_in_period(hits, dt.date(2025, 1, 1), dt.date(2025, 3, 31))) == len(hits)


def test_data_quality_theme_reports_the_period_only(
    clean: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    """Faults wholly before the period belong to an earlier run; one crossing its start and
    timeless master-data faults are reported."""
    from audit_lib.detect.run import detect

    r = clean["readings"]
    c_jan, c_cross = r.loc[r.bureau == "YZ", "cons_no"].unique()[[0, 1]]
    r.loc[(r.cons_no == c_jan) & (r.date == "2025-01-10"), "kwh"] = -4.0
    orphan = r[(r.cons_no == c_jan) & r.date.between("2025-01-05", "2025-01-08")]
    gap = (r.cons_no == c_cross) & r.date.between("2025-01-29", "2025-02-03")
    clean["readings"] = pd.concat([r[~gap], orphan.assign(cons_no="1999999999")])
    b = clean["bills"]
    i_back = b.index[(b.bureau == "YZ") & (b.month == "2025-01")][3]
    b.loc[i_back, ["start_reg", "end_reg", "kwh"]] = [500.0, 400.0, 0.0]
    c = clean["customers"]
    c_code = c.loc[c.index[c.bureau == "YZ"][7], "cons_no"]
    c.loc[c.index[c.bureau == "YZ"][7], "cust_class"] = "martian"
    with write_mart(tmp_path / "mart", clean) as m:
        feb = detect(m, "YZ", dt.date(2025, 2, 1), dt.date(2025, 2, 28), ["data_quality"])
        jan = detect(m, "YZ", dt.date(2025, 1, 1), dt.date(2025, 1, 31), ["data_quality"])
        loose = {"data_quality": {"min_missing_days": 7}}  # the theme's own parameter
        feb_loose = detect(
            m, "YZ", dt.date(2025, 2, 1), dt.date(2025, 2, 28), ["data_quality"], overrides=loose
        )
    assert set(feb.findings.entity) == {c_cross, c_code}
    assert set(feb_loose.findings.entity) == {c_code}  # the 6-day gap is below 7 days
    assert set(jan.findings.entity) == {c_jan, c_cross, c_code, "1999999999", b.cons_no[i_back]}
    assert feb.findings.reason_zh.str.contains("数据质量").all()


def test_absurd_readings_on_a_built_matrix_equal_their_own_matrix(
    clean: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    from audit_lib.data.matrix import build_matrix
    from audit_lib.data.quality_matrix import BuiltMatrix, covering

    r = clean["readings"]
    first, second = r.cons_no.unique()[[0, 5]]
    r.loc[(r.cons_no == first) & (r.date == "2025-01-03"), "kwh"] = 3e6  # above the ingest limit
    r.loc[(r.cons_no == second) & (r.date == "2025-02-11"), "kwh"] = 5e4
    with write_mart(tmp_path / "mart", clean) as m:
        own = run_check(m, "absurd_readings", "YZ")
        span = m.sql("SELECT min(date) AS d0, max(date) AS d1 FROM readings WHERE bureau = 'YZ'")
        matrix = build_matrix(m, "YZ", span.d0.iloc[0], span.d1.iloc[0])
        built = BuiltMatrix("YZ", matrix, m.customers("YZ"))
        assert covering(m, "YZ", built) is not None
        reused = run_check(m, "absurd_readings", "YZ", built=built)
        missing = int(np.isnan(matrix.values).sum())
        cleared = BuiltMatrix("YZ", matrix.without_absurd(), built.customers)  # a context's
        assert int(np.isnan(cleared.matrix.values).sum()) == missing + 2
        recorded = run_check(m, "absurd_readings", "YZ", built=cleared)
    assert set(zip(own.entity, own.date.dt.strftime("%Y-%m-%d"), strict=True)) == {
        (first, "2025-01-03"),
        (second, "2025-02-11"),
    }
    pd.testing.assert_frame_equal(reused, own)
    pd.testing.assert_frame_equal(recorded, own)  # from the record of the cleared days
