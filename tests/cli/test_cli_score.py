"""``audit score``: the real command, on Parquet files written by the test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from detect_data import make_daily, to_long

from audit_lib.cli import main


@pytest.fixture(scope="module")
def readings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    values, _ = make_daily(np.random.default_rng(21), n=30, days=120, n_thieves=3)
    values[0] = 0.0
    path = tmp_path_factory.mktemp("score") / "readings.parquet"
    to_long(values).to_parquet(path, index=False)
    return path


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return int(exc.value.code or 0), capsys.readouterr().err


def test_cli_score_writes_one_row_per_customer(readings: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.parquet"
    proc = subprocess.run(
        [sys.executable, "-m", "audit_lib.cli", "score", "--readings", str(readings),
         "--out", str(out)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    scores = pd.read_parquet(out)
    assert {"cons_no", "score", "reason"} <= set(scores.columns)
    assert len(scores) == 30 and scores["cons_no"].is_unique
    assert scores.loc[scores["cons_no"] == "C0000", "status"].item() == "all_zero"
    assert scores["score"].notna().sum() == 29
    assert "scored 29 of 30" in proc.stdout


def bad_file(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "bad.parquet"
    frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda f: f.drop(columns=["kwh"]), "missing column 'kwh'"),
        (lambda f: f.assign(kwh=f["kwh"].astype(str)), "kwh must be a number"),
        (lambda f: f.assign(date=np.arange(len(f))), "date must be a date"),
        (lambda f: f.iloc[:0], "empty"),
        (lambda f: f[f["cons_no"] < "C0010"], "at least 20"),
        (lambda f: f[f["date"] < "2025-02-15"], "at least 90"),
        (lambda f: pd.concat([f, f.iloc[:1]]), "two readings for customer C0000"),
    ],
    ids=["missing-column", "wrong-type", "date-type", "empty", "few-customers", "few-days",
         "duplicate"],
)  # fmt: skip
def test_cli_score_bad_input_is_one_clear_line(
    readings: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mutate: object,
    expected: str,
) -> None:
    frame = pd.read_parquet(readings)
    path = bad_file(tmp_path, mutate(frame))  # type: ignore[operator]
    code, err = run_main(["score", "--readings", str(path), "--out", str(tmp_path / "o.pq")],
                         capsys)  # fmt: skip
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert expected in err and str(path) in err
    assert "Traceback" not in err
    assert not (tmp_path / "o.pq").exists()


def test_cli_score_missing_or_unreadable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_main(["score", "--readings", str(tmp_path / "nope.parquet"), "--out",
                          str(tmp_path / "o.pq")], capsys)  # fmt: skip
    assert code == 2 and "not found" in err
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    code, err = run_main(["score", "--readings", str(junk), "--out", str(tmp_path / "o.pq")],
                         capsys)  # fmt: skip
    assert code == 2 and "not a readable Parquet file" in err
