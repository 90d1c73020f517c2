"""The scheduler: a plain long-running process (no Jupyter server) that runs ``schedule.yml``.

Each due slot (entry × firing time) is claimed by inserting a :class:`ScheduleSlot` row under a
unique constraint before anything runs. Two schedulers, or one restarted after a crash, cannot
both claim a slot: the second insert fails and that scheduler skips the slot. A slot missed by
less than the schedule's ``grace_minutes`` still runs (once), so a scheduler restarted shortly
after a firing time, or ``audit schedule --once`` called from cron every few minutes, catches up.
Every run is logged (``logging``) and recorded as a :class:`RunRecord`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from audit_lib.db import require_tables, session_factory
from audit_lib.errors import AuditError
from audit_lib.runs.models import RunRecord, ScheduleSlot
from audit_lib.runs.params import PARAMETERS_DIR
from audit_lib.runs.runner import run_notebook
from audit_lib.runs.schedule import (
    SCHEDULE_FILE,
    Schedule,
    ScheduleEntry,
    latest_slot,
    load_schedule,
    next_slot,
    resolve_period,
)

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class SlotOutcome:
    """What happened to one due slot: ``ok``, ``failed`` or ``skipped`` (claimed elsewhere)."""

    entry: str
    slot_at: datetime
    status: str
    run_id: str | None = None
    error: str | None = None


def utc_clock() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def check_tables(engine: Engine) -> None:
    """Raise ConfigError if the run tables are missing from the database."""
    require_tables(engine, (ScheduleSlot.__tablename__, RunRecord.__tablename__))


def due_slots(schedule: Schedule, now: datetime) -> list[tuple[ScheduleEntry, datetime]]:
    """Each entry's latest firing time at or before ``now``, if within the grace period."""
    due = []
    for entry in schedule.entries:
        slot = latest_slot(entry, now, schedule.timezone)
        if now - slot <= schedule.grace:
            due.append((entry, slot))
    return due


def slot_run_id(entry: str, slot_at: datetime) -> str:
    """The run id of a slot: its UTC time and the entry name, e.g. ``20250131T223000Z-daily``."""
    return f"{_naive_utc(slot_at):%Y%m%dT%H%M%SZ}-{entry}"


def claim_slot(sessions: sessionmaker[Session], entry: str, slot_at: datetime) -> bool:
    """Insert the slot's row; False if another scheduler (or an earlier run) holds it."""
    now = _naive_utc(utc_clock())
    row = ScheduleSlot(
        entry=entry,
        slot_at=_naive_utc(slot_at),
        status="running",
        run_id=slot_run_id(entry, slot_at),
        claimed_by=f"{socket.gethostname()}:{os.getpid()}",
        claimed_at=now,
    )
    with sessions() as session:
        session.add(row)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            return False
    return True


def _finish(
    sessions: sessionmaker[Session],
    entry: str,
    slot_at: datetime,
    status: str,
    run_id: str | None,
    error: str | None,
) -> None:
    with sessions() as session:
        slot = session.query(ScheduleSlot).filter_by(entry=entry, slot_at=_naive_utc(slot_at)).one()
        slot.status, slot.run_id, slot.error = status, run_id, error
        slot.finished_at = _naive_utc(utc_clock())
        session.commit()


def run_slot(
    schedule: Schedule,
    entry: ScheduleEntry,
    slot_at: datetime,
    sessions: sessionmaker[Session],
    *,
    outputs: Path | str = "outputs",
    parameters_dir: Path | str = PARAMETERS_DIR,
) -> SlotOutcome:
    """Run a claimed slot, record it, and return its outcome (never raises an AuditError)."""
    local = slot_at.astimezone(schedule.timezone)
    run_id = slot_run_id(entry.name, slot_at)
    period = resolve_period(entry.period, local)
    log.info("slot %s %s: run %s, period %s", entry.name, local.isoformat(), run_id, period)
    started = _naive_utc(utc_clock())
    with sessions() as session:
        session.add(
            RunRecord(
                run_id=run_id,
                notebook=entry.notebook,
                period=period,
                trigger="scheduler",
                status="running",
                output_dir=str(Path(outputs) / run_id),
                started_at=started,
            )
        )
        session.commit()
    status, error, counts = "failed", None, (0, 0, 0)
    try:
        summary = run_notebook(
            entry.notebook,
            entry.bureaus if isinstance(entry.bureaus, str) else list(entry.bureaus),
            period,
            entry.workers,
            entry.cluster,
            parameters_dir=parameters_dir,
            outputs=outputs,
            parameters=entry.parameters,
            parameters_source=f"{schedule.source} ({entry.name})",
            timeout=entry.timeout,
            mart=entry.mart,
            run_id=run_id,
            progress=False,
        )
        status = "ok" if not summary.failed else "failed"
        counts = (len(summary.results), len(summary.ok), len(summary.failed))
        if summary.failed:
            error = f"failed bureaus: {', '.join(summary.failed)}"
    except AuditError as exc:
        error = str(exc)
    except Exception as exc:  # a bug: record and log it, the scheduler keeps serving
        log.exception("slot %s run %s crashed", entry.name, run_id)
        error = f"internal error {type(exc).__name__}: {exc}"
    with sessions() as session:
        record = session.get(RunRecord, run_id)
        assert record is not None
        record.status, record.error = status, error
        record.n_bureaus, record.n_ok, record.n_failed = counts
        record.ended_at = _naive_utc(utc_clock())
        session.commit()
    _finish(sessions, entry.name, slot_at, status, run_id, error)
    log.info("slot %s run %s: %s%s", entry.name, run_id, status, f" ({error})" if error else "")
    return SlotOutcome(entry.name, slot_at, status, run_id, error)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_stale_slots(sessions: sessionmaker[Session]) -> list[str]:
    """Mark ``running`` slots whose scheduler process on this host is gone as ``failed``.

    Such a slot is not run again (its bureaus may be half done): the error says how to finish
    it with ``audit run --retry-failed``. Slots of other hosts are left alone.

    Returns
    -------
    list of str
        The run ids (or entry names) of the slots marked failed.
    """
    host = socket.gethostname()
    recovered = []
    with sessions() as session:
        for slot in session.query(ScheduleSlot).filter_by(status="running"):
            owner, _, pid = slot.claimed_by.rpartition(":")
            if owner != host or not pid.isdigit() or _pid_alive(int(pid)):
                continue
            slot.status, slot.finished_at = "failed", _naive_utc(utc_clock())
            slot.error = (
                f"scheduler process {pid} ended while the slot was running; finish it with "
                f"audit run --retry-failed {slot.run_id}"
            )
            record = session.get(RunRecord, slot.run_id) if slot.run_id else None
            if record is not None and record.status == "running":
                record.status, record.error = "failed", slot.error
            log.warning("slot %s %s: %s", slot.entry, slot.slot_at, slot.error)
            recovered.append(slot.run_id or slot.entry)
        session.commit()
    return recovered


def schedule_once(
    engine: Engine,
    schedule_path: Path | str = SCHEDULE_FILE,
    *,
    now: datetime | None = None,
    outputs: Path | str = "outputs",
    parameters_dir: Path | str = PARAMETERS_DIR,
) -> list[SlotOutcome]:
    """Run every due, unclaimed slot once and return (for cron users: ``audit schedule --once``)."""
    schedule = load_schedule(schedule_path)
    check_tables(engine)
    sessions = session_factory(engine)
    recover_stale_slots(sessions)
    moment = now or utc_clock()
    outcomes = []
    for entry, slot in due_slots(schedule, moment):
        if not claim_slot(sessions, entry.name, slot):
            log.info("slot %s %s already claimed: skipped", entry.name, slot.isoformat())
            outcomes.append(SlotOutcome(entry.name, slot, "skipped"))
            continue
        outcomes.append(
            run_slot(
                schedule, entry, slot, sessions, outputs=outputs, parameters_dir=parameters_dir
            )
        )
    return outcomes


def run_scheduler(
    engine: Engine,
    schedule_path: Path | str = SCHEDULE_FILE,
    *,
    outputs: Path | str = "outputs",
    parameters_dir: Path | str = PARAMETERS_DIR,
    stop: threading.Event | None = None,
    poll_seconds: float = 30.0,
    clock: Clock = utc_clock,
) -> None:
    """Run the schedule until ``stop`` is set: run due slots, sleep until the next firing.

    The schedule file is read again on every wake-up, so edits take effect without a restart.
    """
    stop = stop or threading.Event()
    check_tables(engine)
    log.info("scheduler started (%s, pid %d)", schedule_path, os.getpid())
    while not stop.is_set():
        now = clock()
        wake = now + timedelta(seconds=poll_seconds)
        try:
            schedule_once(
                engine, schedule_path, now=now, outputs=outputs, parameters_dir=parameters_dir
            )
            schedule = load_schedule(schedule_path)
            now = clock()
            wake = min(
                (next_slot(e, now, schedule.timezone) for e in schedule.entries), default=wake
            )
        except AuditError as exc:  # a broken schedule file: say so, keep the process alive
            log.error("scheduler: %s", exc)
        stop.wait(max(0.05, min(poll_seconds, (wake - now).total_seconds() + 0.05)))
    log.info("scheduler stopped")
