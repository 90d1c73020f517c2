"""Reading tasks: filtered, sorted, paged lists, the filters' choices and the full view of
one task.

Only tasks inside the reader's scope are ever returned (:func:`policy.scope_filter`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, func, literal, select
from sqlalchemy.orm import Session

from audit_lib.errors import ConfigError
from audit_lib.tasks.deadlines import split_themes
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
    "deadline_at",
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


SORTS: dict[str, tuple[str, str]] = {
    "priority": ("优先级", "priority"),
    "score": ("评分", "score"),
    "money_at_risk": ("涉及金额", "money at risk"),
    "due_at": ("期限", "deadline"),
    "period_start": ("期间", "period"),
    "id": ("任务号", "task id"),
}
"""Columns a task list may be sorted by, with their names (中文, English)."""


@dataclass(frozen=True)
class TaskFilter:
    """Which tasks a list shows and in what order; ``None`` means no condition."""

    bureau: str | None = None
    state: str | None = None
    theme: str | None = None
    min_priority: float | None = None
    overdue: bool = False
    sort: str = "priority"
    descending: bool = True


def _conditions(user: User, filt: TaskFilter, now: dt.datetime) -> list[ColumnElement[bool]]:
    if filt.state is not None and filt.state not in STATE_LABELS:
        raise ConfigError(
            f"未知状态 unknown state {filt.state!r}; known: {', '.join(STATE_LABELS)}"
        )
    if filt.sort not in SORTS:
        raise ConfigError(f"未知排序 unknown sort {filt.sort!r}; known: {', '.join(SORTS)}")
    where = [scope_filter(user)]
    if filt.bureau is not None:
        where.append(Task.bureau == filt.bureau)
    if filt.state is not None:
        where.append(Task.state == filt.state)
    if filt.theme is not None:
        padded = literal(",") + Task.themes + literal(",")
        where.append(padded.like(f"%,{filt.theme},%"))
    if filt.min_priority is not None:
        where.append(Task.priority >= filt.min_priority)
    if filt.overdue:
        where += [Task.state.in_(OPEN_STATES), Task.due_at < now]
    return where


def list_tasks(
    session: Session,
    actor: User | str,
    filt: TaskFilter | None = None,
    *,
    limit: int = 50,
    offset: int = 0,
    now: dt.datetime | None = None,
    **conditions: Any,
) -> Page:
    """One page of the tasks ``actor`` may see that match ``filt`` (or the same fields given
    as keywords: ``bureau="JB"``, ``overdue=True`` …), sorted by ``filt.sort`` (by priority:
    the score next), then by id.

    Raises
    ------
    ConfigError
        Unknown state or sort column, or a bad page.
    """
    filt = replace(filt or TaskFilter(), **conditions)
    user = get_user(session, actor)
    if limit < 1 or offset < 0:
        raise ConfigError("limit must be ≥ 1 and offset ≥ 0")
    where = _conditions(user, filt, now or utcnow())
    total = session.execute(select(func.count()).select_from(Task).where(*where)).scalar_one()
    col = getattr(Task, filt.sort)
    order = [col.desc() if filt.descending else col.asc()]
    if filt.sort == "priority":
        order.append(Task.score.desc() if filt.descending else Task.score.asc())
    stmt = select(Task).where(*where).order_by(*order, Task.id).offset(offset).limit(limit)
    rows = [task_row(t) for t in session.execute(stmt).scalars()]
    return Page(rows, int(total), offset, limit)


def task_choices(session: Session, actor: User | str) -> dict[str, list[str]]:
    """Bureaus and themes present among the tasks ``actor`` may see (for list filters)."""
    user = get_user(session, actor)
    scope = scope_filter(user)
    bureaus = session.execute(
        select(Task.bureau).distinct().where(scope).order_by(Task.bureau)
    ).scalars()
    combos = session.execute(select(Task.themes).distinct().where(scope)).scalars()
    themes = sorted({t for combo in combos for t in split_themes(combo)})
    return {"bureaus": list(bureaus), "themes": themes}


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
