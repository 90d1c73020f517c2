"""``audit detect`` over a mart: findings to Parquet, and a warning when there is no data."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from cli_fixtures import run

from audit_lib.demo.generate import DemoConfig, generate_demo
from audit_lib.themes.catalogue import get_theme


@pytest.fixture(scope="module")
def mart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("city")
    generate_demo(
        out, DemoConfig(bureaus=1, customers=400, days=152, start=dt.date(2024, 1, 1), seed=5)
    )
    return out / "mart"


def test_cli_detect_writes_findings_with_each_themes_time_limit(
    mart: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "findings.parquet"
    code, stdout, err = run(capsys, "detect", "--mart", str(mart), "--bureau", "YZ", "--period",
                            "2024-03..2024-05", "--themes", "zero_consumption,arrears",
                            "--out", str(out))  # fmt: skip
    assert code == 0, err
    assert "warning" not in err
    findings = pd.read_parquet(out)
    assert len(findings) > 0 and f"{len(findings)} findings" in stdout
    limits = findings.groupby("theme_id")["deadline_days"].unique()
    for theme_id, days in limits.items():
        assert list(days) == [get_theme(str(theme_id)).deadline_days]


def test_cli_detect_over_no_data_warns(
    mart: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "findings.parquet"
    code, stdout, err = run(capsys, "detect", "--mart", str(mart), "--bureau", "YZ", "--period",
                            "2026-01", "--themes", "arrears", "--out", str(out))  # fmt: skip
    assert code == 0 and "0 findings" in stdout
    assert err.startswith("warning: the mart holds no readings of bureau YZ in 2026-01-01..")
