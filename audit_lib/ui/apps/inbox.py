"""The reviewer's inbox query: tasks in scope, filtered, sorted, one page at a time.

:func:`audit_lib.tasks.queries.list_tasks` filters by bureau, state and overdue and always
sorts by priority; the inbox also filters by theme and minimum priority and sorts by any
listed column. It applies the same scope condition (:func:`policy.scope_filter`) and returns
the same :class:`~audit_lib.tasks.queries.Page` of :func:`~audit_lib.tasks.queries.task_row`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, literal, select
from sqlalchemy.orm import Session

from audit_lib.errors import ConfigError
from audit_lib.tasks.deadlines import split_themes
from audit_lib.tasks.machine import OPEN_STATES, STATE_LABELS
from audit_lib.tasks.models import Task, User, utcnow
from audit_lib.tasks.policy import scope_filter
from audit_lib.tasks.queries import Page, task_row
from audit_lib.tasks.service import get_user

SORTS: dict[str, tuple[str, str]] = {
    "priority": ("优先级", "priority"),
    "score": ("评分", "score"),
    "money_at_risk": ("涉及金额", "money at risk"),
    "due_at": ("期限", "deadline"),
    "period_start": ("期间", "period"),
    "id": ("任务号", "task id"),
}


@dataclass(frozen=True)
class InboxFilter:
    """What the inbox shows; ``None`` means no condition."""

    bureau: str | None = None
    state: str | None = None
    theme: str | None = None
    min_priority: float | None = None
    overdue: bool = False
    sort: str = "priority"
    descending: bool = True


def _conditions(user: User, filt: InboxFilter, now: dt.datetime) -> list[ColumnElement[bool]]:
    if filt.state is not None and filt.state not in STATE_LABELS:
        raise ConfigError(f"未知状态 unknown state {filt.state!r}")
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


def list_inbox(
    session: Session,
    actor: User | str,
    filt: InboxFilter | None = None,
    *,
    limit: int = 25,
    offset: int = 0,
    now: dt.datetime | None = None,
) -> Page:
    """One page of the tasks ``actor`` may see that match ``filt``.

    Raises
    ------
    ConfigError
        Unknown state or sort column, or a bad page.
    """
    filt = filt or InboxFilter()
    user = get_user(session, actor)
    if filt.sort not in SORTS:
        raise ConfigError(f"未知排序 unknown sort {filt.sort!r}; known: {', '.join(SORTS)}")
    if limit < 1 or offset < 0:
        raise ConfigError("limit must be ≥ 1 and offset ≥ 0")
    where = _conditions(user, filt, now or utcnow())
    total = session.execute(select(func.count()).select_from(Task).where(*where)).scalar_one()
    col = getattr(Task, filt.sort)
    order = col.desc() if filt.descending else col.asc()
    stmt = select(Task).where(*where).order_by(order, Task.id).offset(offset).limit(limit)
    rows = [task_row(t) for t in session.execute(stmt).scalars()]
    return Page(rows, int(total), offset, limit)


def inbox_choices(session: Session, actor: User | str) -> dict[str, list[str]]:
    """Bureaus and themes present among the tasks ``actor`` may see (for the filters)."""
    user = get_user(session, actor)
    scope = scope_filter(user)
    bureaus = session.execute(
        select(Task.bureau).distinct().where(scope).order_by(Task.bureau)
    ).scalars()
    combos = session.execute(select(Task.themes).distinct().where(scope)).scalars()
    themes = sorted({t for combo in combos for t in split_themes(combo)})
    return {"bureaus": list(bureaus), "themes": themes}
