"""The ``audit run`` / ``audit schedule --once`` commands: usage and clear one-line errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cli_fixtures import run

from audit_lib.db import create_engine
from audit_lib.runs.models import RUN_TABLES

NOTEBOOKS = Path(__file__).parent / "notebooks"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bureaus = tmp_path / "parameters" / "bureaus"
    bureaus.mkdir(parents=True)
    (bureaus / "B1.yml").write_text("code: B1\nname_zh: 测试\nname_en: Test\n", encoding="utf-8")
    shutil.copytree(NOTEBOOKS, tmp_path / "nb")
    (tmp_path / "parameters" / "schedule.yml").write_text(
        "grace_minutes: 1000000\n"  # the yearly slot below is always due, and always the same
        "entries:\n  - {name: daily, notebook: nb/missing.ipynb, cron: '0 0 1 1 *', "
        "period: previous_day}\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return run(capsys, *args)


def test_run_needs_notebook_bureau_and_period(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["run", "nb/ok.ipynb", "--period", "2024-01"], capsys)
    assert code == 2 and "NOTEBOOK, --bureau and --period are required" in err


def test_run_unknown_bureau_is_a_one_line_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(
        ["run", "nb/ok.ipynb", "--bureau", "B1,ZZ", "--period", "2024-01"], capsys
    )
    assert code == 2
    assert err.strip().startswith("error: unknown bureau 'ZZ'") and "ZZ.yml" in err
    assert not (project / "outputs").exists()


def test_run_with_a_bad_period_is_refused_before_any_kernel_starts(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["run", "nb/ok.ipynb", "--bureau", "B1", "--period", "2025-13"], capsys)
    assert code == 2
    assert err.strip().startswith("error: not a period: '2025-13'") and "field period" in err
    assert not (project / "outputs").exists()


def test_run_notebook_without_bureau_parameter_is_refused(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import nbformat

    nb = nbformat.read(project / "nb" / "ok.ipynb", as_version=4)
    nb.cells[1].source = 'period: str = "2024-01"  # period'
    nbformat.write(nb, project / "nb" / "no_bureau.ipynb")
    code, _, err = run_cli(
        ["run", "nb/no_bureau.ipynb", "--bureau", "all", "--period", "2024-01"], capsys
    )
    assert code == 2 and "must declare 'bureau'" in err


def test_bad_param_option_is_refused(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(
        ["run", "nb/ok.ipynb", "--bureau", "B1", "--period", "2024-01", "-p", "threshold"], capsys
    )
    assert code == 2 and "expected KEY=VALUE" in err


def test_retry_failed_of_unknown_run(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["run", "--retry-failed", "no-such-run"], capsys)
    assert code == 2 and "run 'no-such-run' not found" in err


def test_schedule_once_without_tables_says_to_migrate(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["schedule", "--once", "--db", "sqlite:///empty.db"], capsys)
    assert code == 2 and "no table schedule_slots" in err and "audit db upgrade" in err


def test_schedule_once_records_a_slot_that_cannot_start(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = create_engine("sqlite:///runs.db")
    RUN_TABLES[0].metadata.create_all(engine, tables=list(RUN_TABLES))
    engine.dispose()
    code, out, _ = run_cli(["schedule", "--once", "--db", "sqlite:///runs.db"], capsys)
    assert code == 1 and "daily" in out and "failed" in out
    code, out, _ = run_cli(["schedule", "--once", "--db", "sqlite:///runs.db"], capsys)
    assert code == 0 and "skipped" in out  # the same slot is never taken twice
