"""The state machine of an audit task (python-statemachine bound to :class:`Task`).

Main loop::

    new → dispatched → handling → result_submitted → under_review → approved → archived
                                                         │
                                                         └→ rectification_required → rectifying
                                                            → rectification_submitted
                                                            → under_review → approved → archived

Review can send a task back (to ``handling``, or to ``rectifying`` in a rectification round).
The audited unit may appeal (申诉) once from ``dispatched``, ``handling``,
``rectification_required`` or ``rectifying``; the audit centre grants it (the task is archived
as "no problem") or rejects it (the task returns to the state it was appealed from). Any open
task can be cancelled with a reason. ``archived`` and ``cancelled`` are final.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from statemachine import State, StateMachine
from statemachine.exceptions import TransitionNotAllowed

from audit_lib.errors import IllegalTransition

STATE_LABELS: dict[str, tuple[str, str]] = {
    "new": ("新建", "new"),
    "dispatched": ("已派工", "dispatched"),
    "handling": ("处理中", "handling"),
    "result_submitted": ("结果已提交", "result submitted"),
    "under_review": ("审核中", "under review"),
    "approved": ("审核通过", "approved"),
    "rectification_required": ("待整改", "rectification required"),
    "rectifying": ("整改中", "rectifying"),
    "rectification_submitted": ("整改已提交", "rectification submitted"),
    "appealed": ("申诉中", "appealed"),
    "archived": ("已归档", "archived"),
    "cancelled": ("已撤销", "cancelled"),
}

ACTION_LABELS: dict[str, tuple[str, str]] = {
    "dispatch": ("派工", "dispatch"),
    "accept": ("接单处理", "start handling"),
    "submit_result": ("提交处理结果", "submit result"),
    "start_review": ("开始审核", "start review"),
    "approve": ("审核通过", "approve"),
    "require_rectification": ("要求整改", "require rectification"),
    "send_back": ("退回", "send back"),
    "start_rectification": ("开始整改", "start rectification"),
    "submit_rectification": ("提交整改结果", "submit rectification"),
    "archive": ("归档", "archive"),
    "appeal": ("申诉", "appeal"),
    "grant_appeal": ("申诉成立", "grant appeal"),
    "reject_appeal": ("驳回申诉", "reject appeal"),
    "cancel": ("撤销", "cancel"),
}

ACTIONS: tuple[str, ...] = tuple(ACTION_LABELS)
FINAL_STATES: frozenset[str] = frozenset({"archived", "cancelled"})
OPEN_STATES: tuple[str, ...] = tuple(s for s in STATE_LABELS if s not in FINAL_STATES)
APPEALABLE_STATES: frozenset[str] = frozenset(
    {"dispatched", "handling", "rectification_required", "rectifying"}
)


class TaskMachine(StateMachine):
    """Transitions of an audit task; the model's ``state`` column holds the current state."""

    new = State("新建 new", initial=True)
    dispatched = State("已派工 dispatched")
    handling = State("处理中 handling")
    result_submitted = State("结果已提交 result submitted")
    under_review = State("审核中 under review")
    approved = State("审核通过 approved")
    rectification_required = State("待整改 rectification required")
    rectifying = State("整改中 rectifying")
    rectification_submitted = State("整改已提交 rectification submitted")
    appealed = State("申诉中 appealed")
    archived = State("已归档 archived", final=True)
    cancelled = State("已撤销 cancelled", final=True)

    dispatch = new.to(dispatched)
    accept = dispatched.to(handling)
    submit_result = handling.to(result_submitted)
    start_review = result_submitted.to(under_review) | rectification_submitted.to(under_review)
    approve = under_review.to(approved)
    require_rectification = under_review.to(rectification_required, unless="in_rectification")
    send_back = under_review.to(rectifying, cond="in_rectification") | under_review.to(handling)
    start_rectification = rectification_required.to(rectifying)
    submit_rectification = rectifying.to(rectification_submitted)
    archive = approved.to(archived)
    appeal = (
        dispatched.to(appealed, unless="appeal_used")
        | handling.to(appealed, unless="appeal_used")
        | rectification_required.to(appealed, unless="appeal_used")
        | rectifying.to(appealed, unless="appeal_used")
    )
    grant_appeal = appealed.to(archived)
    reject_appeal = (
        appealed.to(dispatched, cond="from_dispatched")
        | appealed.to(handling, cond="from_handling")
        | appealed.to(rectification_required, cond="from_rectification_required")
        | appealed.to(rectifying, cond="from_rectifying")
    )
    cancel = (
        new.to(cancelled)
        | dispatched.to(cancelled)
        | handling.to(cancelled)
        | result_submitted.to(cancelled)
        | under_review.to(cancelled)
        | approved.to(cancelled)
        | rectification_required.to(cancelled)
        | rectifying.to(cancelled)
        | rectification_submitted.to(cancelled)
        | appealed.to(cancelled)
    )

    def in_rectification(self) -> bool:
        """Whether the task is in a rectification round (review of a rectification)."""
        return bool(getattr(self.model, "rectification_round", 0))

    def appeal_used(self) -> bool:
        """Whether the one appeal allowed has been used."""
        return bool(getattr(self.model, "appeal_used", False))

    def _from(self, state: str) -> bool:
        return getattr(self.model, "appeal_from", None) == state

    def from_dispatched(self) -> bool:
        """The appeal was made from ``dispatched``."""
        return self._from("dispatched")

    def from_handling(self) -> bool:
        """The appeal was made from ``handling``."""
        return self._from("handling")

    def from_rectification_required(self) -> bool:
        """The appeal was made from ``rectification_required``."""
        return self._from("rectification_required")

    def from_rectifying(self) -> bool:
        """The appeal was made from ``rectifying``."""
        return self._from("rectifying")


def normalise_action(action: str) -> str:
    """Accept ``submit-result`` as well as ``submit_result``; reject unknown actions."""
    name = action.strip().lower().replace("-", "_")
    if name not in ACTION_LABELS:
        raise IllegalTransition(f"未知操作 unknown action {action!r}; known: {', '.join(ACTIONS)}")
    return name


def refusal(task: Any, name: str, before: str) -> IllegalTransition:
    """The error for action ``name`` refused to ``task`` in state ``before`` (中文 and English)."""
    label = ACTION_LABELS[name]
    state = STATE_LABELS.get(before, (before, before))
    ident = getattr(task, "id", "?")
    return IllegalTransition(
        f"任务 {ident} 当前状态为 {state[0]}，不能{label[0]} "
        f"(task {ident} is {state[1]}: cannot {label[1]})"
    )


@functools.cache
def declared_actions(state: str) -> frozenset[str]:
    """Actions with a transition out of ``state``, guards not evaluated (cheap)."""
    found = TaskMachine.states_map.get(state)
    if found is None:
        return frozenset()
    return frozenset(str(e.id) for e in found.transitions.unique_events)


def check_transition(task: Any, action: str) -> str:
    """Raise :class:`IllegalTransition` unless ``task``'s state declares ``action``.

    Guards (one appeal, rectification round) are checked when the transition fires.
    """
    name = normalise_action(action)
    if name not in declared_actions(str(task.state)):
        raise refusal(task, name, str(task.state))
    return name


def allowed_actions(task: Any) -> list[str]:
    """Actions whose transition (guards included) is possible from the task's state."""
    if task.state in FINAL_STATES:
        return []
    machine = TaskMachine(task, state_field="state")
    return [event.id for event in machine.enabled_events()]


@dataclass
class _GuardProbe:
    """A stand-in model carrying only what the machine's guards read."""

    state: str
    rectification_round: int
    appeal_used: bool
    appeal_from: str | None
    id: object = "?"


@functools.cache
def _resolve(
    state: str, action: str, in_rectification: bool, appeal_used: bool, appeal_from: str | None
) -> str | None:
    probe = _GuardProbe(state, int(in_rectification), appeal_used, appeal_from)
    try:
        TaskMachine(probe, state_field="state").send(action)
    except TransitionNotAllowed:
        return None
    return probe.state


def resolve_transition(task: Any, action: str) -> tuple[str, str]:
    """The ``(before, after)`` states of ``action`` on ``task``, without changing it.

    The answer is the machine's own (the first time a combination of state, action and guard
    inputs — rectification round, appeal used, appealed-from state — is seen, the
    :class:`TaskMachine` fires it on a stand-in and the result is cached), so the lean action
    path in :func:`audit_lib.tasks.service.act` skips building a machine per action.

    Raises
    ------
    IllegalTransition
        If the task's state does not allow the action.
    """
    name = normalise_action(action)
    before = str(task.state)
    after = _resolve(
        before,
        name,
        bool(getattr(task, "rectification_round", 0)),
        bool(getattr(task, "appeal_used", False)),
        getattr(task, "appeal_from", None),
    )
    if after is None:
        raise refusal(task, name, before)
    return before, after
