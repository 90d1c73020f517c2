"""Typed SQLAlchemy models of the closed audit loop (稽查任务闭环).

Tables: users (role and bureau/station scope), tasks (one per customer and period, with a
``version`` column for optimistic locking and a unique ``task_key`` that makes
:func:`audit_lib.tasks.service.tasks_from_findings` idempotent), task_findings (the evidence,
one row per finding, ``finding_id`` unique), attachments (path + sha256), outcomes, per-state
deadlines, an outbox of notifications, and the hash-chained audit log with its chain head.

Times are naive UTC ``datetime`` values (the same on SQLite and PostgreSQL).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from audit_lib.db import Base


def utcnow() -> dt.datetime:
    """The current time as a naive UTC datetime (how every time is stored)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class User(Base):
    """A person using the workbench: one role and a scope (bureau, optionally station).

    ``bureau`` NULL means city-wide (市公司); ``station_id`` NULL means the whole bureau.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    bureau: Mapped[str | None] = mapped_column(String(32))
    station_id: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Task(Base):
    """An audit task (稽查任务): the findings of one entity (customer or area) and period."""

    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("task_key"),
        Index("ix_tasks_bureau_state", "bureau", "state"),
        Index("ix_tasks_state_due_at", "state", "due_at"),
        Index("ix_tasks_bureau_period", "bureau", "period_start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_key: Mapped[str] = mapped_column(String(200), doc="kind|entity|start|end")
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    state: Mapped[str] = mapped_column(String(32), default="new")
    entity: Mapped[str] = mapped_column(String(64))
    entity_kind: Mapped[str] = mapped_column(String(16))
    bureau: Mapped[str] = mapped_column(String(32))
    station_id: Mapped[str | None] = mapped_column(String(64))
    area_id: Mapped[str | None] = mapped_column(String(64))
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    themes: Mapped[str] = mapped_column(String(512), doc="comma-separated theme ids")
    n_findings: Mapped[int] = mapped_column(Integer, default=0)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    money_at_risk: Mapped[float] = mapped_column(Float, default=0.0)
    kwh_at_risk: Mapped[float] = mapped_column(Float, default=0.0)
    priority: Mapped[float] = mapped_column(Float, default=0.0, index=True)
    severity: Mapped[str] = mapped_column(String(16), default="low")
    title_zh: Mapped[str] = mapped_column(Text, default="")
    title_en: Mapped[str] = mapped_column(Text, default="")
    run_id: Mapped[str | None] = mapped_column(String(64))
    notebook: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    state_entered_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    due_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    near_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    deadline_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    """The task's time limit (限时稽查): raised + its themes' strictest ``deadline_days``."""
    near_notified: Mapped[bool] = mapped_column(Boolean, default=False)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    dispatched_by: Mapped[str | None] = mapped_column(String(64))
    handled_by: Mapped[str | None] = mapped_column(String(64))
    rectified_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    rectification_round: Mapped[int] = mapped_column(Integer, default=0)
    appeal_used: Mapped[bool] = mapped_column(Boolean, default=False)
    appeal_from: Mapped[str | None] = mapped_column(String(32))
    appealed_by: Mapped[str | None] = mapped_column(String(64))
    cancel_reason: Mapped[str | None] = mapped_column(Text)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class TaskFinding(Base):
    """One finding linked to a task (its evidence). A finding belongs to one task only."""

    __tablename__ = "task_findings"
    __table_args__ = (UniqueConstraint("finding_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    finding_id: Mapped[str] = mapped_column(String(64))
    theme_id: Mapped[str] = mapped_column(String(64))
    theme_version: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    severity: Mapped[str] = mapped_column(String(16))
    kwh_at_risk: Mapped[float | None] = mapped_column(Float)
    money_at_risk: Mapped[float | None] = mapped_column(Float)
    reason_zh: Mapped[str] = mapped_column(Text)
    reason_en: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(64))
    notebook: Mapped[str | None] = mapped_column(Text)


class Attachment(Base):
    """A file attached to a task as evidence, identified by its SHA-256."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Outcome(Base):
    """The result of a task (one per task): the label that feeds evaluation and detectors."""

    __tablename__ = "outcomes"
    __table_args__ = (UniqueConstraint("task_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    backbilled_kwh: Mapped[float] = mapped_column(Float, default=0.0)
    backbilled_money: Mapped[float] = mapped_column(Float, default=0.0)
    penalty: Mapped[float] = mapped_column(Float, default=0.0)
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class TaskDeadline(Base):
    """One finished stay of a task in a state, with its deadline (限时稽查 history).

    The current stay's deadline lives on the task (``due_at``); a row is written here when
    the task leaves the state. ``overdue`` is true if it left late or was escalated.
    """

    __tablename__ = "task_deadlines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime)
    due_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)


class Notification(Base):
    """An outbox row: a message to one recipient, delivered later by a channel."""

    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("dedup_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(128))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime, index=True)
    channel: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class AuditEvent(Base):
    """One append-only audit event; once sealed, ``hash`` chains it to the event before.

    ``id`` is the insertion order; ``seq`` the position in the chain, given when sealed.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("seq"),
        Index(
            "ix_audit_events_unsealed",
            "id",
            postgresql_where=text("seq IS NULL"),
            sqlite_where=text("seq IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int | None] = mapped_column(Integer)
    task_id: Mapped[int | None] = mapped_column(Integer, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[str] = mapped_column(String(32), doc="ISO time, UTC; hashed as stored")
    action: Mapped[str] = mapped_column(String(48))
    before: Mapped[str | None] = mapped_column(String(32))
    after: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, doc="canonical JSON")
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


class AuditChainHead(Base):
    """The single row naming the last event of the chain (locked while appending)."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))
