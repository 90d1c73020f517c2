"""Who may do what: roles, bureau/station scope, four-eyes and comment rules.

Roles (角色): city auditor (市公司稽查), bureau auditor (区局稽查), station handler (供电所处理人),
reviewer (审核人), theme owner (主题负责人), admin (管理员). A user's scope is a bureau (NULL
= city-wide) and optionally a station. Every check raises
:class:`audit_lib.errors.PermissionDenied` with a one-line reason in Chinese and English.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, true

from audit_lib.errors import ConfigError, PermissionDenied
from audit_lib.tasks.models import Task

ROLE_LABELS: dict[str, tuple[str, str]] = {
    "city_auditor": ("市公司稽查员", "city auditor"),
    "bureau_auditor": ("区局稽查员", "bureau auditor"),
    "station_handler": ("供电所处理人", "station handler"),
    "reviewer": ("审核人", "reviewer"),
    "theme_owner": ("主题负责人", "theme owner"),
    "admin": ("管理员", "admin"),
}
ROLES: tuple[str, ...] = tuple(ROLE_LABELS)

AUDITORS = frozenset({"city_auditor", "bureau_auditor"})
HANDLERS = frozenset({"station_handler"})

ACTION_ROLES: dict[str, frozenset[str]] = {
    "dispatch": AUDITORS,
    "accept": HANDLERS,
    "submit_result": HANDLERS,
    "start_review": frozenset({"reviewer"}),
    "approve": frozenset({"reviewer"}),
    "require_rectification": frozenset({"reviewer"}),
    "send_back": frozenset({"reviewer"}),
    "start_rectification": HANDLERS,
    "submit_rectification": HANDLERS,
    "archive": AUDITORS,
    "appeal": HANDLERS,
    "grant_appeal": frozenset({"city_auditor"}),
    "reject_appeal": frozenset({"city_auditor"}),
    "cancel": AUDITORS | {"admin"},
}

COMMENT_REQUIRED = frozenset({"send_back", "require_rectification", "reject_appeal", "appeal"})
REASON_REQUIRED = frozenset({"cancel"})
REVIEW_ACTIONS = frozenset({"start_review", "approve", "require_rectification", "send_back"})


class Actor(Protocol):
    """What the policy needs to know of a user."""

    name: str
    role: str
    bureau: str | None
    station_id: str | None


def check_role(role: str) -> str:
    """Return ``role`` if it is known, else raise :class:`ConfigError`."""
    if role not in ROLE_LABELS:
        raise ConfigError(f"未知角色 unknown role {role!r}; known: {', '.join(ROLES)}")
    return role


def in_scope(actor: Actor, task: Any) -> bool:
    """Whether ``task`` (bureau, station_id) lies inside the actor's scope."""
    if actor.bureau is None:
        return True
    if task.bureau != actor.bureau:
        return False
    return actor.station_id is None or task.station_id == actor.station_id


def scope_filter(actor: Actor) -> ColumnElement[bool]:
    """A SQL condition on :class:`Task` selecting the tasks the actor may see."""
    if actor.bureau is None:
        return true()
    if actor.station_id is None:
        return Task.bureau == actor.bureau
    return and_(Task.bureau == actor.bureau, Task.station_id == actor.station_id)


def check_visible(actor: Actor, task: Any) -> None:
    """Raise :class:`PermissionDenied` unless the actor may see ``task``."""
    if not in_scope(actor, task):
        raise PermissionDenied(
            f"用户 {actor.name} 无权查看任务 {task.id} (超出管辖范围) "
            f"(user {actor.name} is out of scope for task {task.id})"
        )


def check_action(actor: Actor, task: Any, action: str, comment: str | None) -> None:
    """Check role, scope, four-eyes and the comment rule for ``action`` on ``task``.

    Raises
    ------
    PermissionDenied
        With the first rule broken.
    """
    roles = ACTION_ROLES[action]
    if actor.role not in roles:
        need = "/".join(ROLE_LABELS[r][1] for r in sorted(roles))
        raise PermissionDenied(
            f"角色 {ROLE_LABELS[actor.role][0]} 不能执行该操作 "
            f"(user {actor.name}, role {actor.role}, may not {action}; needs {need})"
        )
    check_visible(actor, task)
    if action in REVIEW_ACTIONS and actor.name in {task.handled_by, task.rectified_by}:
        raise PermissionDenied(
            f"四眼原则：{actor.name} 处理过任务 {task.id}，不能审核 "
            f"(four-eyes: {actor.name} handled task {task.id} and may not review it)"
        )
    if action in {"grant_appeal", "reject_appeal"} and actor.name == task.appealed_by:
        raise PermissionDenied(
            f"四眼原则：不能裁决自己的申诉 (four-eyes: {actor.name} may not rule on own appeal)"
        )
    text = (comment or "").strip()
    if action in COMMENT_REQUIRED and not text:
        raise PermissionDenied(f"该操作必须填写意见 (action {action} needs a comment: --comment)")
    if action in REASON_REQUIRED and not text:
        raise PermissionDenied("撤销必须说明原因 (cancel needs a reason: --comment)")
