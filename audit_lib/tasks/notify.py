"""Notifications (通知): an outbox table, and an SMTP channel that can be switched on.

Notifications for dispatch, near deadline (临期) and overdue (超期) are written to the
``notifications`` outbox in the same transaction as the action that caused them, so none is
lost or sent for a rolled-back action. :func:`deliver_pending` later hands unsent rows to a
channel. The SMTP channel is configured by ``AUDIT_SMTP_HOST`` / ``AUDIT_SMTP_PORT`` /
``AUDIT_SMTP_FROM`` (off when ``AUDIT_SMTP_HOST`` is unset: rows then stay in the outbox).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from audit_lib.errors import ConfigError
from audit_lib.tasks.bulk import table_of
from audit_lib.tasks.models import Notification, utcnow

KIND_LABELS: dict[str, tuple[str, str]] = {
    "dispatch": ("新派工任务", "task dispatched to you"),
    "near_deadline": ("任务临近期限", "task near its deadline"),
    "overdue": ("任务已超期", "task overdue"),
    "escalated": ("超期任务升级", "overdue task escalated to you"),
}


class NoticeTask(Protocol):
    """What a notice tells about its task (a :class:`Task` or an action's result)."""

    @property
    def id(self) -> int: ...
    @property
    def title_zh(self) -> str: ...
    @property
    def title_en(self) -> str: ...
    @property
    def bureau(self) -> str: ...
    @property
    def station_id(self) -> str | None: ...
    @property
    def state(self) -> str: ...
    @property
    def due_at(self) -> dt.datetime | None: ...
    @property
    def priority(self) -> float: ...


class Recipient(Protocol):
    """Whom a notice goes to (a :class:`User` or a row of its name and e-mail)."""

    @property
    def name(self) -> str: ...
    @property
    def email(self) -> str | None: ...


class Channel(Protocol):
    """Something that delivers one notification or raises."""

    @property
    def name(self) -> str:
        """Short channel name stored on sent rows."""

    def send(self, note: Notification) -> None:
        """Deliver ``note``."""


@dataclass(frozen=True)
class SmtpChannel:
    """Plain SMTP delivery (e.g. the utility's internal relay)."""

    host: str
    port: int = 25
    sender: str = "audit-workbench@localhost"
    timeout: float = 10.0
    name: str = "smtp"

    @classmethod
    def from_env(cls) -> SmtpChannel | None:
        """The channel from ``AUDIT_SMTP_*`` variables, or None when switched off."""
        host = os.environ.get("AUDIT_SMTP_HOST")
        if not host:
            return None
        port_text = os.environ.get("AUDIT_SMTP_PORT", "25")
        try:
            port = int(port_text)
        except ValueError:
            raise ConfigError(f"AUDIT_SMTP_PORT must be an integer, got {port_text!r}") from None
        sender = os.environ.get("AUDIT_SMTP_FROM", "audit-workbench@localhost")
        return cls(host=host, port=port, sender=sender)

    def send(self, note: Notification) -> None:
        """Send ``note`` as a UTF-8 e-mail to its recipient's address."""
        if not note.email:
            raise ConfigError(f"user {note.recipient} has no e-mail address")
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = note.email
        msg["Subject"] = note.subject
        msg.set_content(note.body)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            smtp.send_message(msg)


@functools.cache
def _insert_ignore_statement(dialect: str) -> Any:
    """Core ``INSERT … ON CONFLICT (dedup_key) DO NOTHING`` (built once per dialect)."""
    table = table_of(Notification)
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return stmt.on_conflict_do_nothing(index_elements=["dedup_key"])


def _insert_ignore(session: Session, rows: list[dict[str, object]]) -> None:
    stmt = _insert_ignore_statement(session.get_bind().dialect.name)
    session.connection().execute(stmt, rows)


def enqueue(
    session: Session,
    task: NoticeTask,
    kind: str,
    recipients: Sequence[Recipient],
    key_suffix: str = "",
) -> int:
    """Queue one notification of ``kind`` about ``task`` per recipient (deduplicated).

    ``key_suffix`` distinguishes repeats that should be sent again (e.g. a new deadline).
    Returns the number of recipients.
    """
    label = KIND_LABELS[kind]
    subject = f"[稽查任务 {task.id}] {label[0]} / {label[1]}"
    due = task.due_at.strftime("%Y-%m-%d %H:%M") if task.due_at else "-"
    body = (
        f"任务 Task {task.id}: {task.title_zh}\n{task.title_en}\n"
        f"供电局 Bureau {task.bureau}, 供电所 Station {task.station_id or '-'}\n"
        f"状态 State {task.state}, 期限 Due {due} UTC, 优先级 Priority {task.priority:.1f}\n"
    )
    rows: list[dict[str, object]] = [
        {
            "dedup_key": f"{task.id}:{kind}:{user.name}:{key_suffix}"[:128],
            "task_id": task.id,
            "kind": kind,
            "recipient": user.name,
            "email": user.email,
            "subject": subject,
            "body": body,
            "created_at": utcnow(),
            "attempts": 0,
        }
        for user in recipients
    ]
    if rows:
        _insert_ignore(session, rows)
    return len(rows)


def deliver_pending(session: Session, channel: Channel, limit: int = 1000) -> tuple[int, int]:
    """Send up to ``limit`` unsent notifications; return ``(sent, failed)``.

    Failures stay in the outbox with ``last_error`` and are retried next time. The caller
    commits.
    """
    stmt = (
        select(Notification)
        .where(Notification.sent_at.is_(None))
        .order_by(Notification.id)
        .limit(limit)
    )
    sent = failed = 0
    for note in session.execute(stmt).scalars().all():
        note.attempts += 1
        try:
            channel.send(note)
        except (OSError, smtplib.SMTPException, ConfigError) as exc:
            note.last_error = f"{type(exc).__name__}: {exc}"[:500]
            failed += 1
            continue
        note.sent_at = utcnow()
        note.channel = channel.name
        note.last_error = None
        sent += 1
    session.flush()
    return sent, failed
