"""Operations on audit tasks, as the command line and the Voila apps call them.

Every function takes an open session; the caller commits (``commit_or_conflict``). An
operation that fails raises an :class:`audit_lib.errors.AuditError` and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from audit_lib.errors import ConfigError, ConflictError, DataError, IllegalTransition, NotFound
from audit_lib.tasks.auditlog import EventIn, append_events
from audit_lib.tasks.deadlines import DeadlinePolicy, split_themes
from audit_lib.tasks.escalation import owners, state_owner_roles
from audit_lib.tasks.intake import IntakeResult, tasks_from_findings
from audit_lib.tasks.machine import apply_transition, check_transition, normalise_action
from audit_lib.tasks.models import Attachment, Outcome, Task, TaskDeadline, User, utcnow
from audit_lib.tasks.notify import enqueue
from audit_lib.tasks.policy import check_action, check_role, check_visible

__all__ = [
    "OUTCOME_LABELS",
    "IntakeResult",
    "act",
    "add_attachment",
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
AMOUNT_FIELDS = ("backbilled_kwh", "backbilled_money", "penalty")
NEEDS_OUTCOME = frozenset({"submit_result"})
NEEDS_RECORDED_OUTCOME = frozenset({"approve", "archive"})


def commit_or_conflict(session: Session) -> None:
    """Commit; a lost race (stale version, locked database, deadlock) becomes a conflict."""
    try:
        session.commit()
    except (StaleDataError, OperationalError) as exc:
        session.rollback()
        raise ConflictError(f"并发冲突，请刷新后重试 (conflict: {type(exc).__name__})") from None


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
        number = float(value)
        if not number >= 0:
            raise DataError(f"amount {key} must be ≥ 0, got {value!r}", field=key)
        out[key] = number
    return out


def _record_outcome(
    session: Session, task: Task, kind: str, amounts: dict[str, float], actor: str
) -> dict[str, Any]:
    row = session.execute(select(Outcome).where(Outcome.task_id == task.id)).scalar_one_or_none()
    before = (
        None if row is None else {"kind": row.kind} | {f: getattr(row, f) for f in AMOUNT_FIELDS}
    )
    if row is None:
        row = Outcome(task_id=task.id, kind=kind, recorded_by=actor, **amounts)
        session.add(row)
    else:
        row.kind, row.recorded_by, row.recorded_at = kind, actor, utcnow()
        for field, value in amounts.items():
            setattr(row, field, value)
    return {"outcome_before": before, "outcome": {"kind": kind, **amounts}}


def _move_deadline(
    session: Session, task: Task, policy: DeadlinePolicy, now: dt.datetime, before: str
) -> None:
    """Record the stay in ``before`` (deadline history) and set the new state's deadline."""
    overdue = task.escalation_level > 0 or (task.due_at is not None and now > task.due_at)
    session.add(
        TaskDeadline(
            task_id=task.id,
            state=before,
            started_at=task.state_entered_at,
            due_at=task.due_at,
            closed_at=now,
            overdue=overdue,
        )
    )
    themes = split_themes(task.themes)
    task.state_entered_at = now
    task.due_at = policy.due_at(task.state, themes, now)
    task.near_at = policy.near_at(task.state, themes, now)
    task.near_notified = False
    task.escalation_level = 0


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
) -> Task:
    """Perform ``action`` on task ``task_id`` as ``actor`` and log it.

    Checks role, scope, four-eyes and comment rules (:mod:`audit_lib.tasks.policy`), fires the
    transition (:mod:`audit_lib.tasks.machine`), records outcome and amounts, moves the
    deadline, queues notifications and appends an audit event. The caller commits.

    Raises
    ------
    NotFound, PermissionDenied, IllegalTransition, DataError
        Nothing was changed.
    ConflictError
        Someone changed the task first (``expected_version`` or optimistic locking); the
        session is rolled back.
    """
    name = normalise_action(action)
    user = get_user(session, actor)
    task = get_task(session, task_id, user)
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
    needs_current = name in NEEDS_RECORDED_OUTCOME or (money and outcome is None)
    current = _current_outcome(session, task) if needs_current else None
    if name in NEEDS_RECORDED_OUTCOME and outcome is None and current is None:
        raise IllegalTransition(f"任务 {task_id} 尚无处理结论 (task {task_id} has no outcome)")
    if money and outcome is None and current is None:
        raise DataError("amounts need an outcome (--outcome)", field="outcome")
    with session.no_autoflush:
        before, after = apply_transition(task, name)
        detail = _update_fields(session, task, user, name, before, comment, outcome, money)
        task.updated_at = now
        _move_deadline(session, task, deadlines or DeadlinePolicy(), now, before)
    try:
        session.flush()
    except (StaleDataError, OperationalError, IntegrityError) as exc:
        session.rollback()
        raise ConflictError(
            f"任务 {task_id} 已被他人修改，请刷新后重试 (conflict on task {task_id}: "
            f"{type(exc).__name__})"
        ) from None
    if name == "dispatch" or after in {"rectification_required"}:
        roles = state_owner_roles(after)
        enqueue(session, task, "dispatch", owners(session, task, roles), f"{task.version}")
    append_events(session, [EventIn(user.name, name, task.id, before, after, detail)])
    return task


def _update_fields(
    session: Session,
    task: Task,
    user: User,
    name: str,
    before: str,
    comment: str | None,
    outcome: str | None,
    money: dict[str, float],
) -> dict[str, Any]:
    """Set who did what on the task and record the outcome; return the event details."""
    detail: dict[str, Any] = {"version": task.version + 1}
    if comment:
        detail["comment"] = comment
    if name == "dispatch":
        task.dispatched_by = user.name
    elif name in {"accept", "submit_result"}:
        task.handled_by = user.name
    elif name in {"start_rectification", "submit_rectification"}:
        task.rectified_by = user.name
    elif name in {"start_review", "approve", "require_rectification", "send_back"}:
        task.reviewed_by = user.name
    if name == "require_rectification":
        task.rectification_round += 1
    elif name == "appeal":
        task.appeal_used, task.appeal_from, task.appealed_by = True, before, user.name
    elif name == "cancel":
        task.cancel_reason = comment
    if name == "grant_appeal":
        outcome, money = "no_problem", {}
    if outcome is not None or money:
        kind = outcome or _current_outcome(session, task) or "no_problem"
        detail |= _record_outcome(session, task, kind, money, user.name)
    return detail


def _current_outcome(session: Session, task: Task) -> str | None:
    return session.execute(select(Outcome.kind).where(Outcome.task_id == task.id)).scalar()


def add_attachment(
    session: Session, task_id: int, path: str | Path, actor: User | str
) -> Attachment:
    """Attach a file (its path and SHA-256) to a task as evidence."""
    user = get_user(session, actor)
    task = get_task(session, task_id, user)
    file = Path(path)
    if not file.is_file():
        raise NotFound(f"附件不存在 attachment file not found: {file}")
    digest = hashlib.sha256()
    with file.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    row = Attachment(
        task_id=task.id,
        path=str(file),
        sha256=digest.hexdigest(),
        size=file.stat().st_size,
        added_by=user.name,
    )
    session.add(row)
    session.flush()
    append_events(
        session,
        [
            EventIn(
                user.name,
                "attach",
                task.id,
                task.state,
                task.state,
                {"path": str(file), "sha256": row.sha256},
            )
        ],
    )
    return row
