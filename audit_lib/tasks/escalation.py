"""Who owns a task now, near-deadline reminders, overdue tasks and their escalation.

Each open state has an owner role (dispatch: auditors; handling and rectification: the
station's handlers; review: reviewers; appeal: the city audit centre). A task past its
deadline is overdue (超期); :func:`escalate_overdue` raises it one level — station (供电所) →
bureau (区供电局) → city (市公司) — notifies the new level's auditors, and gives them a fresh
window of the state's length before the next escalation.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, or_, select
from sqlalchemy.orm import Session

from audit_lib.errors import PermissionDenied
from audit_lib.tasks.auditlog import EventIn, append_events
from audit_lib.tasks.bulk import table_of
from audit_lib.tasks.deadlines import ESCALATION_LEVELS, DeadlinePolicy, split_themes
from audit_lib.tasks.machine import OPEN_STATES
from audit_lib.tasks.models import Task, User, utcnow
from audit_lib.tasks.notify import NoticeTask, Recipient, enqueue
from audit_lib.tasks.policy import scope_filter

STATE_OWNERS: dict[str, frozenset[str]] = {
    "new": frozenset({"bureau_auditor"}),
    "dispatched": frozenset({"station_handler"}),
    "handling": frozenset({"station_handler"}),
    "result_submitted": frozenset({"reviewer"}),
    "under_review": frozenset({"reviewer"}),
    "approved": frozenset({"bureau_auditor"}),
    "rectification_required": frozenset({"station_handler"}),
    "rectifying": frozenset({"station_handler"}),
    "rectification_submitted": frozenset({"reviewer"}),
    "appealed": frozenset({"city_auditor"}),
}
LEVEL_OWNERS: dict[int, frozenset[str]] = {
    1: frozenset({"bureau_auditor"}),
    2: frozenset({"city_auditor"}),
}
ESCALATE_ROLES = frozenset({"city_auditor", "bureau_auditor", "admin"})


@dataclass(frozen=True)
class Escalation:
    """One task raised a level by :func:`escalate_overdue`."""

    task_id: int
    state: str
    from_level: int
    to_level: int


def state_owner_roles(state: str) -> frozenset[str]:
    """Roles owning a task in ``state`` (empty for final states)."""
    return STATE_OWNERS.get(state, frozenset())


@functools.cache
def _owners_statement() -> Select[Any]:
    users = table_of(User)
    return select(users.c.name, users.c.email).where(
        users.c.active.is_(True),
        users.c.role.in_(bindparam("roles", expanding=True)),
        or_(users.c.bureau.is_(None), users.c.bureau == bindparam("bureau")),
        or_(users.c.station_id.is_(None), users.c.station_id == bindparam("station")),
    )


def owners(session: Session, task: NoticeTask, roles: frozenset[str]) -> Sequence[Recipient]:
    """Active users of ``roles`` whose scope covers ``task`` (their name and e-mail)."""
    if not roles:
        return []
    params = {"roles": sorted(roles), "bureau": task.bureau, "station": task.station_id}
    return session.connection().execute(_owners_statement(), params).all()


def _level_owners(users: Sequence[User], task: Task, level: int) -> list[User]:
    roles = LEVEL_OWNERS.get(level, STATE_OWNERS.get(task.state, frozenset()))
    return [
        u
        for u in users
        if u.role in roles
        and (u.bureau is None or u.bureau == task.bureau)
        and (u.station_id is None or u.station_id == task.station_id)
    ]


def overdue_tasks(
    session: Session, actor: User, now: dt.datetime | None = None, limit: int | None = None
) -> list[Task]:
    """Open tasks past their deadline, in the actor's scope, most overdue first."""
    now = now or utcnow()
    stmt = (
        select(Task)
        .where(Task.state.in_(OPEN_STATES), Task.due_at < now, scope_filter(actor))
        .order_by(Task.due_at, Task.id)
        .execution_options(populate_existing=True)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.execute(stmt).scalars())


def escalate_overdue(
    session: Session,
    actor: User,
    now: dt.datetime | None = None,
    deadlines: DeadlinePolicy | None = None,
) -> list[Escalation]:
    """Raise every overdue task in scope one level and notify; the caller commits."""
    if actor.role not in ESCALATE_ROLES:
        raise PermissionDenied(
            f"用户 {actor.name} 不能升级超期任务 (role {actor.role} may not "
            "escalate; needs an auditor or admin)"
        )
    now = now or utcnow()
    policy = deadlines or DeadlinePolicy()
    users = list(session.execute(select(User).where(User.active.is_(True))).scalars())
    done: list[Escalation] = []
    events: list[EventIn] = []
    for task in overdue_tasks(session, actor, now):
        key = task.due_at.isoformat() if task.due_at else ""
        enqueue(session, task, "overdue", _level_owners(users, task, -1), key)
        level = task.escalation_level
        if level + 1 >= len(ESCALATION_LEVELS):
            continue
        themes = split_themes(task.themes)
        task.escalation_level = level + 1
        task.due_at = policy.due_at(task.state, themes, now)
        task.near_at = policy.near_at(task.state, themes, now)
        task.near_notified = False
        task.updated_at = now
        enqueue(session, task, "escalated", _level_owners(users, task, level + 1), key)
        done.append(Escalation(task.id, task.state, level, level + 1))
        events.append(
            EventIn(
                actor.name,
                "escalate",
                task.id,
                task.state,
                task.state,
                {"level": [ESCALATION_LEVELS[level][1], ESCALATION_LEVELS[level + 1][1]]},
            )
        )
    session.flush()
    append_events(session, events)
    return done


def notify_near_deadline(session: Session, now: dt.datetime | None = None) -> int:
    """Queue a reminder (临期提醒) to the owners of tasks near their deadline; return count."""
    now = now or utcnow()
    stmt = select(Task).where(
        Task.state.in_(OPEN_STATES),
        Task.near_notified.is_(False),
        Task.near_at <= now,
        Task.due_at > now,
    )
    users = list(session.execute(select(User).where(User.active.is_(True))).scalars())
    count = 0
    for task in session.execute(stmt).scalars():
        key = task.due_at.isoformat() if task.due_at else ""
        count += enqueue(session, task, "near_deadline", _level_owners(users, task, -1), key)
        task.near_notified = True
    session.flush()
    return count
