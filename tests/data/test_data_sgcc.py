"""Loading a file in the public SGCC theft data set's format (written here) into the mart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_fixtures import run

from audit_lib.cli import main
from audit_lib.data.access import Mart
from audit_lib.data.matrix import build_matrix
from audit_lib.data.sgcc import load_sgcc, read_sgcc
from audit_lib.errors import DataError, SchemaError


def write_sgcc_csv(
    path: Path, rng: np.random.Generator, n: int = 30, days: int = 75
) -> pd.DataFrame:
    """An SGCC-format file: CONS_NO, FLAG, day columns like 2014/1/1 shuffled, ~25 % missing."""
    dates = pd.date_range("2014-01-01", periods=days)
    values = rng.gamma(2.0, 5.0, size=(n, days)).round(2)
    values[rng.random((n, days)) < 0.25] = np.nan
    cons = [f"{rng.integers(16**12):012X}" for _ in range(n)]
    flags = (rng.random(n) < 0.2).astype(int)
    wide = pd.DataFrame(values, columns=[f"{d.year}/{d.month}/{d.day}" for d in dates])
    truth = wide.copy()
    truth.columns = dates
    truth.index = cons
    wide.insert(0, "FLAG", flags)
    wide.insert(0, "CONS_NO", cons)
    shuffled = ["CONS_NO", "FLAG", *rng.permutation(wide.columns[2:]).tolist()]
    out = pd.concat([wide[shuffled], wide[shuffled].iloc[[3]]])  # plus a repeated row
    out.to_csv(path, index=False)
    return truth.assign(FLAG=flags)


def test_load_sgcc_puts_every_value_in_the_mart(tmp_path: Path, rng: np.random.Generator) -> None:
    truth = write_sgcc_csv(tmp_path / "data.csv", rng)
    flags = truth.pop("FLAG")
    result = load_sgcc(tmp_path / "data.csv", tmp_path / "mart", tmp_path / "labels.csv")
    assert (result.customers, result.days) == truth.shape
    assert result.duplicate_rows == 1 and result.bad_values == 0
    assert result.readings == int(truth.notna().to_numpy().sum())
    assert result.missing_share == pytest.approx(truth.isna().to_numpy().mean())
    labels = pd.read_csv(tmp_path / "labels.csv", dtype={"cons_no": str})
    assert list(labels.cons_no) == list(truth.index)
    assert list(labels.flag) == list(flags) and result.thieves == int(flags.sum())
    with Mart(tmp_path / "mart") as m:
        assert "SGCC" in set(m.bureaus().bureau)
        assert len(m.customers("SGCC")) == len(truth)
        mat = build_matrix(m, "SGCC", truth.columns[0], truth.columns[-1])
    np.testing.assert_allclose(mat.values, truth.to_numpy(np.float32), equal_nan=True)
    assert list(mat.cons_no) == list(truth.index)


def test_load_sgcc_keeps_other_bureaus_and_city_rows(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    from mart_fixture import write_tiny_mart

    tables = write_tiny_mart(tmp_path / "mart")
    write_sgcc_csv(tmp_path / "data.csv", rng, n=5, days=10)
    for _ in range(2):  # loading twice changes nothing
        load_sgcc(tmp_path / "data.csv", tmp_path / "mart", tmp_path / "labels.parquet")
    with Mart(tmp_path / "mart") as m:
        assert sorted(m.bureaus().bureau) == ["JB", "SGCC", "YZ"]
        assert len(m.tariffs()) == tables["tariffs"].num_rows + 1
        assert len(m.customers()) == tables["customers"].num_rows + 5
    assert len(pd.read_parquet(tmp_path / "labels.parquet")) == 5


def test_read_sgcc_bad_inputs_name_the_problem(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("CONS_NO,FLAG,2014/1/1,yesterday\nA1,0,1.0,2.0\n")
    with pytest.raises(SchemaError, match="2014/1/1"):
        read_sgcc(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text("CONS_NO,2014/1/1\nA1,1.0\n")
    with pytest.raises(SchemaError, match="FLAG"):
        read_sgcc(tmp_path / "b.csv")
    (tmp_path / "c.csv").write_text("CONS_NO,FLAG,2014/1/2,2014/1/1\nA1,0,1.0,2.0\nA2,7,1.0,oops\n")
    with pytest.raises(DataError, match="FLAG") as info:
        read_sgcc(tmp_path / "c.csv")
    assert info.value.row == 1
    with pytest.raises(DataError, match="does not exist"):
        read_sgcc(tmp_path / "none.csv")


def test_read_sgcc_orders_days_and_counts_unreadable(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("CONS_NO,FLAG,2014/1/2,2014/1/1\nA1,0,1.5,2.5\nA2,1,,oops\n")
    _cons, flag, dates, values, unreadable = read_sgcc(tmp_path / "d.csv")
    assert list(unreadable) == [0, 1]
    assert list(dates.strftime("%Y-%m-%d")) == ["2014-01-01", "2014-01-02"]
    np.testing.assert_array_equal(values, np.array([[2.5, 1.5], [np.nan, np.nan]], np.float32))
    assert list(flag) == [0, 1]
    result = load_sgcc(tmp_path / "d.csv", tmp_path / "mart", tmp_path / "l.csv")
    assert result.bad_values == 1 and result.readings == 2


def test_cli_load_sgcc(
    tmp_path: Path, rng: np.random.Generator, capsys: pytest.CaptureFixture[str]
) -> None:
    write_sgcc_csv(tmp_path / "data.csv", rng, n=4, days=8)
    main(["load-sgcc", str(tmp_path / "data.csv"), "--mart", str(tmp_path / "m"),
          "--labels", str(tmp_path / "labels.csv")])  # fmt: skip
    assert "4 户" in capsys.readouterr().out


def test_detection_on_a_mart_of_sgcc_readings_skips_the_themes_it_cannot_feed(
    tmp_path: Path, rng: np.random.Generator, capsys: pytest.CaptureFixture[str]
) -> None:
    write_sgcc_csv(tmp_path / "d.csv", rng, n=60, days=200)
    load_sgcc(tmp_path / "d.csv", tmp_path / "mart", tmp_path / "labels.csv")
    out = tmp_path / "findings.parquet"
    argv = ["detect", "--mart", str(tmp_path / "mart"), "--bureau", "SGCC",
            "--period", "2014-04..2014-07", "--out", str(out)]  # fmt: skip
    code, out_text, err = run(capsys, *argv)
    assert code == 0, err
    skipped = {line.split()[2] for line in err.splitlines() if "skipped" in line}
    assert skipped == {"tariff_misapplication", "over_capacity", "arrears", "repeated_complaints"}
    assert "no bills" in err and "no tickets" in err
    assert "skipped: no bills" in out_text  # the summary names them too
    findings = pd.read_parquet(out)
    assert "theft_suspicion" in set(findings["theme_id"])  # what the readings feed still runs
