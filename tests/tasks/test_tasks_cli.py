"""``audit db|users|tasks|log`` end to end, on SQLite and PostgreSQL."""

# ruff: noqa: F401, F811  (pytest fixtures imported from tasks_fixtures)

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_fixtures import run
from sqlalchemy import text
from tasks_fixtures import db_url, make_findings, pg_template, pg_url, sqlite_url

from audit_lib.db import create_engine


@pytest.fixture
def cli_db(db_url: str, monkeypatch: pytest.MonkeyPatch, capsys) -> str:
    monkeypatch.setenv("AUDIT_DB_URL", db_url)
    for argv in (
        ["db", "upgrade"],
        ["users", "add", "aud", "--role", "bureau_auditor", "--bureau", "YZ"],
        [
            "users",
            "add",
            "han",
            "--role",
            "station_handler",
            "--bureau",
            "YZ",
            "--station",
            "YZ-S1",
        ],
        ["users", "add", "rev", "--role", "reviewer", "--bureau", "YZ"],
        ["users", "add", "city", "--role", "city_auditor"],
    ):
        code, _, err = run(capsys, *argv)
        assert code == 0, err
    return db_url


def test_cli_loop_from_findings_to_review(cli_db, capsys, tmp_path: Path, rng) -> None:
    path = tmp_path / "findings.parquet"
    make_findings(6, rng, stations=("YZ-S1",)).to_parquet(path)
    code, out, _ = run(capsys, "tasks", "from-findings", str(path), "--as", "aud")
    assert code == 0 and out.startswith("6 tasks created, 6 findings linked")
    code, out, _ = run(capsys, "tasks", "from-findings", str(path), "--as", "aud")
    assert code == 0 and out.startswith("0 tasks created, 0 findings linked, 6 already known")
    code, out, _ = run(capsys, "tasks", "list", "--as", "han", "--json", "--limit", "2")
    page = json.loads(out)
    assert page["total"] == 6 and len(page["rows"]) == 2
    tid = str(page["rows"][0]["id"])
    for argv in (
        ["dispatch", "--as", "aud"],
        ["accept", "--as", "han"],
        [
            "submit-result",
            "--as",
            "han",
            "--outcome",
            "tariff_error",
            "--amount",
            "1200",
            "--amount",
            "penalty=300",
        ],
        ["start-review", "--as", "rev"],
        ["approve", "--as", "rev"],
    ):
        code, out, err = run(capsys, "tasks", "act", tid, *argv)
        assert code == 0, err
    assert out.strip().startswith(f"task {tid}: approved")
    code, out, _ = run(capsys, "tasks", "show", tid, "--as", "city", "--json")
    view = json.loads(out)
    assert view["outcome"]["kind"] == "tariff_error" and view["outcome"]["penalty"] == 300.0
    assert view["outcome"]["backbilled_money"] == 1200.0
    assert [h["action"] for h in view["history"]][-2:] == ["start_review", "approve"]
    assert view["allowed_actions"] == ["archive", "cancel"]
    code, out, _ = run(capsys, "tasks", "show", tid, "--as", "han")
    assert code == 0 and "allowed: -" in out
    code, out, _ = run(capsys, "log", "verify")
    assert code == 0 and "audit log OK" in out


# dispatch task 1 with a tariff-error outcome; the amount to record follows
_TARIFF_ERROR = [
    "tasks",
    "act",
    "1",
    "dispatch",
    "--as",
    "aud",
    "--outcome",
    "tariff_error",
    "--amount",
]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tasks", "act", "1", "approve", "--as", "rev"], "cannot approve"),
        (["tasks", "act", "1", "dispatch", "--as", "nobody"], "unknown user 'nobody'"),
        (["tasks", "act", "1", "dispatch", "--as", "han"], "may not dispatch"),
        (["tasks", "act", "99", "dispatch", "--as", "aud"], "task 99 not found"),
        (["tasks", "act", "1", "dispatch", "--as", "aud", "--expected-version", "7"], "version"),
        (["tasks", "act", "1", "fly", "--as", "aud"], "unknown action 'fly'"),
        (["tasks", "list", "--as", "aud", "--state", "done"], "unknown state 'done'"),
        (["tasks", "from-findings", "missing.parquet", "--as", "aud"], "not found"),
        (["users", "add", "x", "--role", "boss"], "unknown role 'boss'"),
        ([*_TARIFF_ERROR, "inf"], "backbilled_money must be finite"),
        ([*_TARIFF_ERROR, "penalty=nan"], "penalty must be finite"),
        ([*_TARIFF_ERROR, "backbilled_kwh=-1e308"], "backbilled_kwh must be finite and ≥ 0"),
    ],
)
def test_cli_errors_are_one_line_and_non_zero(cli_db, capsys, tmp_path, rng, argv, message) -> None:
    path = tmp_path / "f.parquet"
    make_findings(1, rng, stations=("YZ-S1",)).to_parquet(path)
    assert run(capsys, "tasks", "from-findings", str(path), "--as", "aud")[0] == 0
    code, _out, err = run(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_cli_db_upgrade_adds_the_system_actor_of_scheduled_runs_once(
    capsys, tmp_path, rng, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_DB_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    code, out, _ = run(capsys, "db", "upgrade")
    assert code == 0 and "added user system (city_auditor)" in out
    code, out, _ = run(capsys, "db", "upgrade")
    assert code == 0 and "added user system" not in out  # once
    path = tmp_path / "f.parquet"
    make_findings(2, rng).to_parquet(path)
    code, out, err = run(capsys, "tasks", "from-findings", str(path), "--as", "system")
    assert code == 0 and out.startswith("2 tasks created"), err


def test_cli_log_verify_fails_on_tampering(cli_db, capsys, tmp_path, rng) -> None:
    path = tmp_path / "f.parquet"
    make_findings(3, rng).to_parquet(path)
    run(capsys, "tasks", "from-findings", str(path), "--as", "aud")
    engine = create_engine(cli_db)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET action = 'nothing' WHERE seq = 6"))
    engine.dispose()
    code, _out, err = run(capsys, "log", "verify")
    assert code == 1 and "broken at seq 6" in err


def test_cli_overdue_json_and_installed_entry_point(cli_db, capsys, tmp_path, rng) -> None:
    code, out, _ = run(capsys, "tasks", "overdue", "--as", "city", "--json")
    assert code == 0 and json.loads(out) == {"overdue": [], "escalated": []}
    env = os.environ | {"AUDIT_DB_URL": cli_db}
    proc = subprocess.run(
        [sys.executable, "-m", "audit_lib.cli", "tasks", "show", "1", "--as", "ghost"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: 未知用户 unknown user 'ghost' (add it: audit users add)"
    ]


def test_cli_demo_command(cli_db, capsys, tmp_path, rng) -> None:
    path = tmp_path / "findings.parquet"
    make_findings(30, rng, stations=("YZ-S1", "YZ-S2")).to_parquet(path)
    code, out, err = run(capsys, "tasks", "demo", str(path))
    assert code == 0, err
    assert "30 tasks created" in out and "archived 2" in out and "overdue 1" in out
    code, out, _ = run(
        capsys, "tasks", "list", "--as", "demo_city", "--state", "appealed", "--json"
    )
    assert json.loads(out)["total"] == 1


def test_cli_on_a_database_never_set_up_says_run_db_upgrade(
    capsys, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_DB_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    for argv in (["tasks", "list", "--as", "system"], ["users", "add", "x", "--role", "admin"]):
        code, _out, err = run(capsys, *argv)
        assert code == 2 and err.count("\n") == 1, err
        assert "has no table users: run the database migrations first (audit db upgrade)" in err
