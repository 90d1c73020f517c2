"""Database records of runs and of schedule slots.

A schedule slot is one firing of one ``schedule.yml`` entry (entry name × slot time). The row is
inserted before the run starts, under a unique constraint, so of two schedulers — or one that
restarted — exactly one gets the slot; the other's insert fails and it skips the slot.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from audit_lib.db import Base


class RunRecord(Base):
    """One run of a notebook over bureaus (its files live in ``outputs/<run_id>/``)."""

    __tablename__ = "run_records"

    run_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    notebook: Mapped[str] = mapped_column(String(255))
    period: Mapped[str] = mapped_column(String(40))
    trigger: Mapped[str] = mapped_column(String(20), doc="cli / scheduler / retry")
    status: Mapped[str] = mapped_column(String(20), doc="running / ok / failed")
    n_bureaus: Mapped[int] = mapped_column(Integer, default=0)
    n_ok: Mapped[int] = mapped_column(Integer, default=0)
    n_failed: Mapped[int] = mapped_column(Integer, default=0)
    output_dir: Mapped[str] = mapped_column(String(500))
    started_at: Mapped[datetime] = mapped_column(DateTime())
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class ScheduleSlot(Base):
    """The lock and log of one firing of a schedule entry.

    ``status`` is ``running`` while the run goes on, then ``ok`` or ``failed`` (some bureau
    failed, or the run could not start: see ``error``).
    """

    __tablename__ = "schedule_slots"
    __table_args__ = (UniqueConstraint("entry", "slot_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry: Mapped[str] = mapped_column(String(80))
    slot_at: Mapped[datetime] = mapped_column(DateTime(), doc="slot time, naive UTC")
    status: Mapped[str] = mapped_column(String(20))
    run_id: Mapped[str | None] = mapped_column(String(120), nullable=True)
    claimed_by: Mapped[str] = mapped_column(String(120), doc="host:pid of the scheduler")
    claimed_at: Mapped[datetime] = mapped_column(DateTime())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


RUN_TABLES = (RunRecord.__table__, ScheduleSlot.__table__)
"""The tables of this module (for ``metadata.create_all(tables=...)`` in tests)."""
