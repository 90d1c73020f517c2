"""Reading tasks: filtered, paged lists and the full view of one task.

Only tasks inside the reader's scope are ever returned (:func:`policy.scope_filter`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit_lib.errors import ConfigError
from audit_lib.tasks.machine import OPEN_STATES, STATE_LABELS, allowed_actions
from audit_lib.tasks.models import Attachment, AuditEvent, Outcome, Task, TaskFinding, User, utcnow
from audit_lib.tasks.policy import ACTION_ROLES, in_scope, scope_filter
from audit_lib.tasks.service import get_task, get_user

LIST_COLUMNS = (
    "id",
    "state",
    "bureau",
    "station_id",
    "entity",
    "period_start",
    "period_end",
    "themes",
    "priority",
    "score",
    "money_at_risk",
    "severity",
    "due_at",
    "escalation_level",
    "version",
    "title_zh",
)


@dataclass(frozen=True)
class Page:
    """One page of tasks and the total number matching the filters."""

    rows: list[dict[str, Any]]
    total: int
    offset: int
    limit: int


def task_row(task: Task) -> dict[str, Any]:
    """The list view of a task as plain values (dates as ISO strings)."""
    out: dict[str, Any] = {}
    for col in LIST_COLUMNS:
        value = getattr(task, col)
        out[col] = value.isoformat() if isinstance(value, dt.date) else value
    out["state_zh"] = STATE_LABELS[task.state][0]
    return out


def list_tasks(
    session: Session,
    actor: User | str,
    *,
    bureau: str | None = None,
    state: str | None = None,
    overdue: bool = False,
    now: dt.datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    """Tasks the actor may see, filtered, highest priority first, one page at a time."""
    user = get_user(session, actor)
    if state is not None and state not in STATE_LABELS:
        raise ConfigError(f"未知状态 unknown state {state!r}; known: {', '.join(STATE_LABELS)}")
    if limit < 1 or offset < 0:
        raise ConfigError("limit must be ≥ 1 and offset ≥ 0")
    where = [scope_filter(user)]
    if bureau is not None:
        where.append(Task.bureau == bureau)
    if state is not None:
        where.append(Task.state == state)
    if overdue:
        where += [Task.state.in_(OPEN_STATES), Task.due_at < (now or utcnow())]
    total = session.execute(select(func.count()).select_from(Task).where(*where)).scalar_one()
    stmt = (
        select(Task)
        .where(*where)
        .order_by(Task.priority.desc(), Task.score.desc(), Task.id)
        .offset(offset)
        .limit(limit)
    )
    rows = [task_row(t) for t in session.execute(stmt).scalars()]
    return Page(rows, int(total), offset, limit)


def show_task(session: Session, task_id: int, actor: User | str) -> dict[str, Any]:
    """Everything about one task: fields, findings, attachments, outcome, history, actions."""
    user = get_user(session, actor)
    task = get_task(session, task_id, user)
    view = task_row(task) | {
        "entity_kind": task.entity_kind,
        "area_id": task.area_id,
        "title_en": task.title_en,
        "state_en": STATE_LABELS[task.state][1],
        "notebook": task.notebook,
        "run_id": task.run_id,
        "created_by": task.created_by,
        "handled_by": task.handled_by,
        "reviewed_by": task.reviewed_by,
        "appeal_used": task.appeal_used,
        "cancel_reason": task.cancel_reason,
    }
    findings = session.execute(
        select(TaskFinding).where(TaskFinding.task_id == task.id).order_by(TaskFinding.score.desc())
    ).scalars()
    view["findings"] = [
        {
            k: getattr(f, k)
            for k in (
                "finding_id",
                "theme_id",
                "theme_version",
                "score",
                "severity",
                "money_at_risk",
                "reason_zh",
                "reason_en",
                "evidence",
                "notebook",
            )
        }
        for f in findings
    ]
    view["attachments"] = [
        {"path": a.path, "sha256": a.sha256, "size": a.size, "added_by": a.added_by}
        for a in session.execute(select(Attachment).where(Attachment.task_id == task.id)).scalars()
    ]
    outcome = session.execute(select(Outcome).where(Outcome.task_id == task.id)).scalar()
    view["outcome"] = (
        None
        if outcome is None
        else {
            "kind": outcome.kind,
            "backbilled_kwh": outcome.backbilled_kwh,
            "backbilled_money": outcome.backbilled_money,
            "penalty": outcome.penalty,
            "recorded_by": outcome.recorded_by,
        }
    )
    events = session.execute(
        select(AuditEvent).where(AuditEvent.task_id == task.id).order_by(AuditEvent.seq)
    ).scalars()
    view["history"] = [
        {
            "seq": e.seq,
            "at": e.at,
            "actor": e.actor,
            "action": e.action,
            "before": e.before,
            "after": e.after,
            "detail": e.detail,
        }
        for e in events
    ]
    view["allowed_actions"] = [
        a for a in allowed_actions(task) if user.role in ACTION_ROLES[a] and in_scope(user, task)
    ]
    return view
