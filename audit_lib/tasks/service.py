"""Operations on audit tasks, as the command line and the Voila apps call them.

Every function takes an open session; the caller commits (``commit_or_conflict``). An
operation that fails raises an :class:`audit_lib.errors.AuditError` and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from audit_lib.errors import ConfigError, ConflictError, DataError, IllegalTransition, NotFound
from audit_lib.tasks.auditlog import EventIn, append_events
from audit_lib.tasks.bulk import table_of
from audit_lib.tasks.deadlines import DeadlinePolicy, split_themes
from audit_lib.tasks.escalation import owners, state_owner_roles
from audit_lib.tasks.intake import IntakeResult, tasks_from_findings
from audit_lib.tasks.machine import check_transition, normalise_action, resolve_transition
from audit_lib.tasks.models import Outcome, Task, User, utcnow
from audit_lib.tasks.notify import enqueue
from audit_lib.tasks.policy import check_action, check_role, check_visible
from audit_lib.tasks.writes import AMOUNT_FIELDS, ActedTask, first_row, write_action

__all__ = [
    "OUTCOME_LABELS",
    "IntakeResult",
    "act",
    "add_user",
    "commit_or_conflict",
    "get_task",
    "get_user",
    "tasks_from_findings",
]

OUTCOME_LABELS: dict[str, tuple[str, str]] = {
    "confirmed_theft": ("窃电属实", "confirmed theft"),
    "violation": ("违约用电", "violation"),
    "tariff_error": ("电价执行错误", "tariff error"),
    "data_error": ("数据错误", "data error"),
    "no_problem": ("无问题", "no problem"),
}
TASK_FIELDS_READ = (
    "id",
    "version",
    "state",
    "bureau",
    "station_id",
    "themes",
    "state_entered_at",
    "due_at",
    "escalation_level",
    "handled_by",
    "rectified_by",
    "rectification_round",
    "appeal_used",
    "appeal_from",
    "appealed_by",
)  # what the checks, the transition and the deadline of :func:`act` read (fewer columns)
USER_FIELDS_READ = ("id", "name", "role", "bureau", "station_id", "active")  # Actor + active
NEEDS_OUTCOME = frozenset({"submit_result"})
NEEDS_RECORDED_OUTCOME = frozenset({"approve", "archive"})


def commit_or_conflict(session: Session) -> None:
    """Commit; a lost race (stale version, locked database, deadlock) becomes a conflict."""
    try:
        session.commit()
    except (StaleDataError, OperationalError) as exc:
        session.rollback()
        raise ConflictError(f"并发冲突，请刷新后重试 (conflict: {type(exc).__name__})") from None


SYSTEM_USER = "system"
"""The actor scheduled and command-line runs raise tasks as (the monitoring notebook's
default ``actor``): a city auditor, created by ``audit db upgrade``."""


def ensure_system_user(session: Session) -> bool:
    """Add :data:`SYSTEM_USER` (city auditor) unless a user of that name exists; whether it
    was added. The caller commits."""
    if session.execute(select(User.id).where(User.name == SYSTEM_USER)).first():
        return False
    add_user(session, SYSTEM_USER, "city_auditor")
    return True


def add_user(
    session: Session,
    name: str,
    role: str,
    bureau: str | None = None,
    station_id: str | None = None,
    email: str | None = None,
) -> User:
    """Create a user with ``role`` and scope; station handlers need a bureau."""
    check_role(role)
    if not name.strip():
        raise ConfigError("user name is empty")
    if station_id and not bureau:
        raise ConfigError(f"user {name}: a station needs its bureau (--bureau)")
    if role in {"bureau_auditor", "station_handler"} and not bureau:
        raise ConfigError(f"user {name}: role {role} needs --bureau")
    if role == "city_auditor" and bureau:
        raise ConfigError(f"user {name}: a city auditor is city-wide; omit --bureau")
    if session.execute(select(User.id).where(User.name == name)).first():
        raise ConflictError(f"用户已存在 user {name!r} already exists")
    user = User(name=name, role=role, bureau=bureau, station_id=station_id, email=email)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ConflictError(f"用户已存在 user {name!r} already exists") from None
    append_events(
        session,
        [
            EventIn(
                "system",
                "add_user",
                None,
                None,
                None,
                {"user": name, "role": role, "bureau": bureau, "station": station_id},
            )
        ],
    )
    return user


def get_user(session: Session, name: str | User) -> User:
    """The active user called ``name`` (a :class:`User` is returned as is)."""
    if isinstance(name, User):
        return name
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None or not user.active:
        raise NotFound(f"未知用户 unknown user {name!r} (add it: audit users add)")
    return user


def get_task(session: Session, task_id: int, actor: User | str) -> Task:
    """Task ``task_id`` as currently stored, if the actor may see it."""
    user = get_user(session, actor)
    stmt = select(Task).where(Task.id == task_id).execution_options(populate_existing=True)
    task = session.execute(stmt).scalar_one_or_none()
    if task is None:
        raise NotFound(f"任务不存在 task {task_id} not found")
    check_visible(user, task)
    return task


def _check_amounts(amounts: Mapping[str, float] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in (amounts or {}).items():
        if key not in AMOUNT_FIELDS:
            raise DataError(f"unknown amount {key!r}; known: {', '.join(AMOUNT_FIELDS)}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise DataError(f"amount {key} must be a number, got {value!r}", field=key) from None
        if not (math.isfinite(number) and number >= 0):  # NaN and inf are not amounts
            raise DataError(f"amount {key} must be finite and ≥ 0, got {value!r}", field=key)
        out[key] = number
    return out


@functools.cache
def _load_statement(by_id: bool) -> Select[Any]:
    """The read of :func:`_load` (built once: building statements costs more than running)."""
    u, t, o = table_of(User), table_of(Task), table_of(Outcome)
    cols = [
        *(u.c[name].label(f"u_{name}") for name in USER_FIELDS_READ),
        t.c.id.label("t_present"),
        *(t.c[name] for name in TASK_FIELDS_READ),
        o.c.id.label("o_id"),
        *(getattr(o.c, f).label(f"o_{f}") for f in ("kind", *AMOUNT_FIELDS)),
    ]
    joined = u.outerjoin(t, t.c.id == bindparam("task_id")).outerjoin(o, o.c.task_id == t.c.id)
    where = (u.c.id if by_id else u.c.name) == bindparam("who")
    return select(*cols).select_from(joined).where(where)


def _load(session: Session, task_id: int, actor: User | str) -> tuple[Any, Any, Any]:
    """One round trip: the user (by name, or the given one), the task and its outcome.

    Returns ``(user, task row or None, outcome row or None)``; raises :class:`NotFound` for an
    unknown or inactive user (checked first, as :func:`get_user` does).
    """
    by_id = isinstance(actor, User)
    params = {"task_id": task_id, "who": actor.id if isinstance(actor, User) else actor}
    row = first_row(session, _load_statement(by_id), params)
    if isinstance(actor, User):
        user: Any = actor
    elif row is None or not row.u_active:
        raise NotFound(f"未知用户 unknown user {actor!r} (add it: audit users add)")
    else:
        user = SimpleNamespace(**{name: getattr(row, f"u_{name}") for name in USER_FIELDS_READ})
    if row is None or row.t_present is None:
        raise NotFound(f"任务不存在 task {task_id} not found")
    return user, row, row if row.o_id is not None else None


def _deadline_changes(
    task: Any, policy: DeadlinePolicy, now: dt.datetime, after: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The deadline-history row of the stay that ends, and the task's new deadline fields."""
    overdue = task.escalation_level > 0 or (task.due_at is not None and now > task.due_at)
    history = {
        "task_id": task.id,
        "state": task.state,
        "started_at": task.state_entered_at,
        "due_at": task.due_at,
        "closed_at": now,
        "overdue": bool(overdue),
    }
    themes = split_themes(task.themes)
    fields = {
        "state_entered_at": now,
        "due_at": policy.due_at(after, themes, now),
        "near_at": policy.near_at(after, themes, now),
        "near_notified": False,
        "escalation_level": 0,
    }
    return history, fields


def act(
    session: Session,
    task_id: int,
    action: str,
    actor: User | str,
    comment: str | None = None,
    outcome: str | None = None,
    amounts: Mapping[str, float] | None = None,
    *,
    expected_version: int | None = None,
    deadlines: DeadlinePolicy | None = None,
    now: dt.datetime | None = None,
) -> ActedTask:
    """Perform ``action`` on task ``task_id`` as ``actor`` and log it; the task as stored after.

    Checks role, scope, four-eyes and comment rules (:mod:`audit_lib.tasks.policy`), fires the
    transition (:mod:`audit_lib.tasks.machine`), records outcome and amounts, moves the
    deadline, queues notifications and appends an audit event. The caller commits.

    The path is lean: one read (user, task and outcome together), the checks in Python, one
    ``UPDATE … WHERE id = :id AND version = :v RETURNING`` (optimistic lock), the deadline
    history row, the outcome upsert if any, and the audit event last (on PostgreSQL one
    server call, so the chain head is locked only from there to the commit).

    Raises
    ------
    NotFound, PermissionDenied, IllegalTransition, DataError
        Nothing was changed.
    ConflictError
        Someone changed the task first (``expected_version`` or optimistic locking); the
        session is rolled back.
    """
    name = normalise_action(action)
    user, task, stored = _load(session, task_id, actor)
    check_visible(user, task)
    now = now or utcnow()
    if expected_version is not None and task.version != expected_version:
        raise ConflictError(
            f"任务 {task_id} 已被他人修改 (task {task_id} is at version {task.version}, "
            f"you saw {expected_version}): reload and retry"
        )
    check_action(user, task, name, comment)
    check_transition(task, name)
    money = _check_amounts(amounts)
    if outcome is not None and outcome not in OUTCOME_LABELS:
        raise DataError(f"unknown outcome {outcome!r}; known: {', '.join(OUTCOME_LABELS)}")
    if name in NEEDS_OUTCOME and outcome is None:
        raise DataError(f"{name} needs --outcome ({', '.join(OUTCOME_LABELS)})", field="outcome")
    current = stored.o_kind if stored is not None else None
    if name in NEEDS_RECORDED_OUTCOME and outcome is None and current is None:
        raise IllegalTransition(f"任务 {task_id} 尚无处理结论 (task {task_id} has no outcome)")
    if money and outcome is None and current is None:
        raise DataError("amounts need an outcome (--outcome)", field="outcome")
    before, after = resolve_transition(task, name)
    changes, detail, record = _field_changes(task, user, name, before, comment, outcome, money)
    history, deadline = _deadline_changes(task, deadlines or DeadlinePolicy(), now, after)
    changes |= deadline | {"state": after, "version": task.version + 1, "updated_at": now}
    if record is not None:
        detail |= _outcome_detail(stored, *record)
    event = EventIn(user.name, name, task_id, before, after, detail)
    row, given = None, frozenset[str]()
    if record is not None:
        row, given = _outcome_row(task_id, *record, user.name), frozenset(record[1])
    try:
        updated = write_action(session, task_id, task.version, changes, history, row, given, event)
    except (OperationalError, IntegrityError) as exc:
        updated = None
        problem = type(exc).__name__
    else:
        problem = "StaleData"
    if updated is None:
        session.rollback()
        raise ConflictError(
            f"任务 {task_id} 已被他人修改，请刷新后重试 (conflict on task {task_id}: {problem})"
        )
    if name == "dispatch" or after in {"rectification_required"}:
        roles = state_owner_roles(after)
        enqueue(session, updated, "dispatch", owners(session, updated, roles), f"{updated.version}")
    return updated


def _field_changes(
    task: Any,
    user: Any,
    name: str,
    before: str,
    comment: str | None,
    outcome: str | None,
    money: dict[str, float],
) -> tuple[dict[str, Any], dict[str, Any], tuple[str, dict[str, float]] | None]:
    """Who did what (task columns), the event details, and the outcome to record if any."""
    changes: dict[str, Any] = {}
    detail: dict[str, Any] = {"version": task.version + 1}
    if comment:
        detail["comment"] = comment
    if name == "dispatch":
        changes["dispatched_by"] = user.name
    elif name in {"accept", "submit_result"}:
        changes["handled_by"] = user.name
    elif name in {"start_rectification", "submit_rectification"}:
        changes["rectified_by"] = user.name
    elif name in {"start_review", "approve", "require_rectification", "send_back"}:
        changes["reviewed_by"] = user.name
    if name == "require_rectification":
        changes["rectification_round"] = task.rectification_round + 1
    elif name == "appeal":
        changes |= {"appeal_used": True, "appeal_from": before, "appealed_by": user.name}
    elif name == "cancel":
        changes["cancel_reason"] = comment
    if name == "grant_appeal":
        outcome, money = "no_problem", {}
    record = None
    if outcome is not None or money:
        record = (outcome or task.o_kind or "no_problem", money)
    return changes, detail, record


def _outcome_row(task_id: int, kind: str, money: dict[str, float], actor: str) -> dict[str, Any]:
    """The outcome row to insert (amounts not given are 0; on conflict they are kept)."""
    values = {"task_id": task_id, "kind": kind, "recorded_by": actor, "recorded_at": utcnow()}
    return {f: 0.0 for f in AMOUNT_FIELDS} | values | money


def _outcome_detail(stored: Any, kind: str, money: dict[str, float]) -> dict[str, Any]:
    before = (
        None
        if stored is None
        else {"kind": stored.o_kind} | {f: getattr(stored, f"o_{f}") for f in AMOUNT_FIELDS}
    )
    return {"outcome_before": before, "outcome": {"kind": kind, **money}}
