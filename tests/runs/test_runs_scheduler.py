"""The scheduler's slot lock, on SQLite and PostgreSQL: two schedulers or a restart never run a
slot twice; every run is recorded. Real databases, real papermill runs."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from audit_lib.db import create_engine
from audit_lib.errors import ConfigError
from audit_lib.runs.models import RUN_TABLES, RunRecord, ScheduleSlot
from audit_lib.runs.scheduler import check_tables, schedule_once

NOTEBOOKS = Path(__file__).parent / "notebooks"
REPO = Path(__file__).resolve().parents[2]
SHANGHAI = ZoneInfo("Asia/Shanghai")
PG_ADMIN_URL = os.environ.get(
    "AUDIT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with bureau B1, the test notebooks and a daily schedule at 06:00."""
    bureaus = tmp_path / "parameters" / "bureaus"
    bureaus.mkdir(parents=True)
    (bureaus / "B1.yml").write_text("code: B1\nname_zh: 测试\nname_en: Test\n", encoding="utf-8")
    shutil.copytree(NOTEBOOKS, tmp_path / "nb")
    write_schedule(tmp_path, cron="0 6 * * *")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_schedule(root: Path, cron: str, notebook: str = "nb/ok.ipynb") -> Path:
    path = root / "parameters" / "schedule.yml"
    path.write_text(
        "timezone: Asia/Shanghai\ngrace_minutes: 60\nentries:\n"
        f"  - {{name: daily, notebook: {notebook}, bureaus: all, cron: '{cron}', "
        "period: previous_day, workers: 1}\n",
        encoding="utf-8",
    )
    return path


def _sqlite(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'runs.db'}"


def _postgres() -> Iterator[str]:
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"audit_runs_test_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database with the run tables (Base.metadata.create_all of this module's tables)."""
    urls = _sqlite(tmp_path) if request.param == "sqlite" else _postgres()
    url = next(urls)
    engine = create_engine(url)
    RUN_TABLES[0].metadata.create_all(engine, tables=list(RUN_TABLES))
    engine.dispose()
    yield url
    next(urls, None)


def rows(engine: Engine) -> tuple[list[ScheduleSlot], list[RunRecord]]:
    with Session(engine) as session:
        return (
            list(session.scalars(sa.select(ScheduleSlot))),
            list(session.scalars(sa.select(RunRecord))),
        )


@pytest.mark.slow
def test_two_schedulers_one_slot_run_once_and_restart_does_not_rerun(
    project: Path, db_url: str
) -> None:
    now = datetime(2025, 2, 1, 6, 10, tzinfo=SHANGHAI)  # 10 min after the 06:00 slot
    barrier, outcomes = threading.Barrier(2), []

    def scheduler() -> None:  # each "scheduler" has its own engine, like a separate process
        engine = create_engine(db_url)
        barrier.wait()
        outcomes.extend(schedule_once(engine, "parameters/schedule.yml", now=now))
        engine.dispose()

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert sorted(o.status for o in outcomes) == ["ok", "skipped"]
    run_id = next(o.run_id for o in outcomes if o.status == "ok")
    assert run_id == "20250131T220000Z-daily"
    assert [p.name for p in (project / "outputs").iterdir()] == [run_id]
    assert (project / "outputs" / run_id / "B1" / "ok.html").is_file()

    restarted = create_engine(db_url)  # a restart: new process, same database
    again = schedule_once(restarted, "parameters/schedule.yml", now=now.replace(minute=20))
    assert [o.status for o in again] == ["skipped"]
    late = datetime(2025, 2, 1, 7, 30, tzinfo=SHANGHAI)  # beyond the 60-minute grace
    assert schedule_once(restarted, "parameters/schedule.yml", now=late) == []
    slots, runs = rows(restarted)
    restarted.dispose()
    assert [(s.entry, s.status, s.run_id) for s in slots] == [("daily", "ok", run_id)]
    assert slots[0].slot_at == datetime(2025, 1, 31, 22, 0)  # naive UTC
    assert [(r.run_id, r.status, r.n_ok, r.period) for r in runs] == [
        (run_id, "ok", 1, "2025-01-31")
    ]


def test_slot_that_cannot_start_is_recorded_as_failed(project: Path, db_url: str) -> None:
    write_schedule(project, cron="0 6 * * *", notebook="nb/missing.ipynb")
    engine = create_engine(db_url)
    now = datetime(2025, 2, 1, 6, 0, tzinfo=SHANGHAI)
    [outcome] = schedule_once(engine, "parameters/schedule.yml", now=now)
    assert outcome.status == "failed" and "notebook not found" in (outcome.error or "")
    slots, runs = rows(engine)
    engine.dispose()
    assert slots[0].status == "failed" and "missing.ipynb" in (slots[0].error or "")
    assert runs[0].status == "failed"


def test_slot_of_a_dead_scheduler_is_marked_failed_not_rerun(project: Path, db_url: str) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    engine = create_engine(db_url)
    slot_at = datetime(2025, 1, 31, 22, 0)
    with Session(engine) as session:
        session.add(
            ScheduleSlot(
                entry="daily",
                slot_at=slot_at,
                status="running",
                run_id="r-dead",
                claimed_by=f"{socket.gethostname()}:{dead.pid}",
                claimed_at=slot_at,
            )
        )
        session.add(
            ScheduleSlot(
                entry="daily",
                slot_at=datetime(2025, 1, 30, 22, 0),
                status="running",
                run_id="r-alive",
                claimed_by=f"{socket.gethostname()}:{os.getpid()}",
                claimed_at=slot_at,
            )
        )
        session.add(
            RunRecord(
                run_id="r-dead",
                notebook="nb/ok.ipynb",
                period="2025-01-31",
                trigger="scheduler",
                status="running",
                output_dir="outputs/r-dead",
                started_at=slot_at,
            )
        )
        session.commit()
    now = datetime(2025, 2, 1, 6, 30, tzinfo=SHANGHAI)  # the dead slot (06:00) is still due
    assert [o.status for o in schedule_once(engine, "parameters/schedule.yml", now=now)] == [
        "skipped"
    ]
    slots, runs = rows(engine)
    engine.dispose()
    by_run = {s.run_id: s for s in slots}
    assert by_run["r-dead"].status == "failed"
    assert "audit run --retry-failed r-dead" in (by_run["r-dead"].error or "")
    assert by_run["r-alive"].status == "running"  # its scheduler (this process) is alive
    assert runs[0].status == "failed"
    assert not (project / "outputs").exists()


def test_slot_whose_run_crashes_is_recorded_and_logged(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import audit_lib.runs.scheduler as scheduler_module

    def crash(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(scheduler_module, "run_notebook", crash)  # stands in for a bug
    engine = create_engine(next(_sqlite(tmp_path)))
    RUN_TABLES[0].metadata.create_all(engine, tables=list(RUN_TABLES))
    now = datetime(2025, 2, 1, 6, 0, tzinfo=SHANGHAI)
    [outcome] = schedule_once(engine, "parameters/schedule.yml", now=now)
    slots, runs = rows(engine)
    engine.dispose()
    assert outcome.status == "failed" and "RuntimeError: disk on fire" in (outcome.error or "")
    assert slots[0].status == "failed" and runs[0].status == "failed"
    assert "crashed" in caplog.text


def test_scheduler_refuses_a_database_without_run_tables(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(ConfigError, match="no table schedule_slots"):
        check_tables(engine)
    engine.dispose()


@pytest.mark.slow
def test_two_scheduler_processes_never_run_a_slot_twice(project: Path, tmp_path: Path) -> None:
    url = next(_sqlite(tmp_path))
    engine = create_engine(url)
    RUN_TABLES[0].metadata.create_all(engine, tables=list(RUN_TABLES))
    write_schedule(project, cron="* * * * * */4")  # every 4 seconds (croniter seconds field)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "audit_lib.cli", "scheduler", "--db", url, "--poll", "1"]
    log_paths = [tmp_path / f"scheduler-{i}.log" for i in range(2)]
    procs = [
        subprocess.Popen(cmd, cwd=project, env=env, stderr=path.open("w"), text=True)
        for path in log_paths
    ]
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:  # until both are up and two slots have finished
        started = all("scheduler started" in p.read_text() for p in log_paths)
        finished = [s for s in rows(engine)[0] if s.status != "running"]
        if started and len(finished) >= 2:
            break
        time.sleep(0.5)
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(timeout=120)
    logs = [p.read_text() for p in log_paths]
    assert [p.returncode for p in procs] == [0, 0], logs
    assert all("scheduler started" in log and "scheduler stopped" in log for log in logs)
    slots, runs = rows(engine)
    engine.dispose()
    assert len(slots) >= 2
    assert len({(s.entry, s.slot_at) for s in slots}) == len(slots)
    assert sorted(s.run_id or "" for s in slots) == sorted(r.run_id for r in runs)
    folders = sorted(p.name for p in (project / "outputs").iterdir())
    assert folders == sorted(r.run_id for r in runs)
    for folder in folders:
        manifest = (project / "outputs" / folder / "B1" / "manifest.json").read_text()
        assert '"attempt": 1' in manifest
