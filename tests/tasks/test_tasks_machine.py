"""The task state machine: every legal path, illegal actions refused, nothing changed on refusal."""

# ruff: noqa: F401, F811  (pytest fixtures imported from tasks_fixtures)

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from sqlalchemy import Integer, bindparam, func, literal_column, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from statemachine.exceptions import TransitionNotAllowed
from tasks_fixtures import (
    LOOP_TO_ARCHIVE,
    db_url,
    drive,
    make_findings,
    make_session,
    pg_template,
    pg_url,
    sqlite_url,
)

from audit_lib.errors import IllegalTransition
from audit_lib.tasks.machine import (
    ACTIONS,
    APPEALABLE_STATES,
    FINAL_STATES,
    STATE_LABELS,
    TaskMachine,
    allowed_actions,
    normalise_action,
    refusal,
    resolve_transition,
)
from audit_lib.tasks.models import AuditEvent, Outcome, Task, TaskDeadline
from audit_lib.tasks.service import act, get_user, tasks_from_findings
from audit_lib.tasks.writes import first_row


def apply_transition(task: Task, action: str) -> tuple[str, str]:
    """Fire ``action`` with the state machine itself on ``task``: the reference the service's
    cached :func:`resolve_transition` is checked against. An illegal action leaves the state."""
    name = normalise_action(action)
    before = str(task.state)
    try:
        TaskMachine(task, state_field="state").send(name)
    except TransitionNotAllowed:
        task.state = before
        raise refusal(task, name, before) from None
    return before, str(task.state)


def fresh(state: str = "new", **kw: object) -> SimpleNamespace:
    base = {
        "id": 1,
        "state": state,
        "rectification_round": 0,
        "appeal_used": False,
        "appeal_from": None,
    }
    return SimpleNamespace(**(base | kw))


EXPECTED = {
    "new": {"dispatch", "cancel"},
    "dispatched": {"accept", "appeal", "cancel"},
    "handling": {"submit_result", "appeal", "cancel"},
    "result_submitted": {"start_review", "cancel"},
    "under_review": {"approve", "require_rectification", "send_back", "cancel"},
    "approved": {"archive", "cancel"},
    "rectification_required": {"start_rectification", "appeal", "cancel"},
    "rectifying": {"submit_rectification", "appeal", "cancel"},
    "rectification_submitted": {"start_review", "cancel"},
    "archived": set(),
    "cancelled": set(),
}


@pytest.mark.parametrize("state", sorted(EXPECTED))
def test_machine_allowed_actions_per_state(state: str) -> None:
    assert set(allowed_actions(fresh(state))) == EXPECTED[state]


@pytest.mark.parametrize("state", sorted(EXPECTED))
def test_machine_illegal_actions_raise_and_keep_state(state: str) -> None:
    for action in set(ACTIONS) - EXPECTED[state] - {"grant_appeal", "reject_appeal"}:
        task = fresh(state)
        with pytest.raises(IllegalTransition, match="cannot"):
            apply_transition(task, action)
        assert task.state == state


def test_machine_main_loop_and_rectification_loop() -> None:
    task = fresh()
    path = ["dispatch", "accept", "submit_result", "start_review", "approve", "archive"]
    states = [apply_transition(task, a)[1] for a in path]
    assert states == [
        "dispatched",
        "handling",
        "result_submitted",
        "under_review",
        "approved",
        "archived",
    ]
    task = fresh("under_review")
    assert apply_transition(task, "require_rectification")[1] == "rectification_required"
    task.rectification_round = 1
    for action, state in [
        ("start_rectification", "rectifying"),
        ("submit_rectification", "rectification_submitted"),
        ("start_review", "under_review"),
    ]:
        assert apply_transition(task, action)[1] == state
    assert "require_rectification" not in allowed_actions(task)
    assert apply_transition(task, "send_back")[1] == "rectifying"


def test_machine_send_back_returns_to_handling_before_rectification() -> None:
    assert apply_transition(fresh("under_review"), "send_back") == ("under_review", "handling")


@pytest.mark.parametrize(
    "origin", ["dispatched", "handling", "rectification_required", "rectifying"]
)
def test_machine_appeal_once_and_rejection_returns_to_origin(origin: str) -> None:
    task = fresh(origin)
    assert apply_transition(task, "appeal")[1] == "appealed"
    task.appeal_used, task.appeal_from = True, origin
    assert apply_transition(task, "reject_appeal")[1] == origin
    with pytest.raises(IllegalTransition):
        apply_transition(task, "appeal")


def test_machine_grant_appeal_archives() -> None:
    task = fresh("appealed", appeal_used=True, appeal_from="handling")
    assert apply_transition(task, "grant_appeal")[1] == "archived"


def test_machine_final_states_have_no_actions() -> None:
    assert all(not allowed_actions(fresh(s)) for s in FINAL_STATES)
    assert set(STATE_LABELS) >= set(EXPECTED)


def test_machine_action_names_accept_hyphens_and_reject_unknown() -> None:
    assert normalise_action("submit-result") == "submit_result"
    with pytest.raises(IllegalTransition, match="unknown action"):
        normalise_action("approve-everything")


def test_act_full_loop_records_outcome_deadlines_and_log(make_session, rng) -> None:
    with make_session() as s:
        res = tasks_from_findings(
            s, make_findings(3, rng, stations=("YZ-S1",)), get_user(s, "aud_yz")
        )
        s.commit()
    tid = res.task_ids[0]
    drive(make_session, tid, LOOP_TO_ARCHIVE)
    with make_session() as s:
        task = s.get(Task, tid)
        assert task is not None and task.state == "archived" and task.due_at is None
        assert task.version == 1 + len(LOOP_TO_ARCHIVE)
        outcome = s.execute(select(Outcome).where(Outcome.task_id == tid)).scalar_one()
        assert (
            outcome.kind,
            outcome.backbilled_kwh,
            outcome.backbilled_money,
            outcome.penalty,
        ) == ("confirmed_theft", 1200.0, 624.0, 1872.0)
        stays = s.execute(select(func.count()).where(TaskDeadline.task_id == tid)).scalar_one()
        assert stays == len(LOOP_TO_ARCHIVE)
        actions = (
            s.execute(
                select(AuditEvent.action).where(AuditEvent.task_id == tid).order_by(AuditEvent.seq)
            )
            .scalars()
            .all()
        )
        assert actions == ["create"] + [a for a, _, _ in LOOP_TO_ARCHIVE]


def test_act_illegal_action_changes_nothing(make_session, rng) -> None:
    with make_session() as s:
        res = tasks_from_findings(
            s, make_findings(1, rng, stations=("YZ-S1",)), get_user(s, "aud_yz")
        )
        s.commit()
        tid = res.task_ids[0]
        events = s.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    with make_session() as s:
        with pytest.raises(IllegalTransition, match="cannot approve"):
            act(s, tid, "approve", "rev_yz")
        s.commit()
    with make_session() as s:
        task = s.get(Task, tid)
        assert task is not None and (task.state, task.version) == ("new", 1)
        assert s.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == events
    assert np.isfinite(task.priority)


def test_resolve_transition_agrees_with_the_machine_everywhere() -> None:
    checked = 0
    for state in STATE_LABELS:
        for action in ACTIONS:
            for rounds in (0, 2):
                for used in (False, True):
                    for source in (None, *sorted(APPEALABLE_STATES)):
                        fields = {
                            "id": 7,
                            "state": state,
                            "rectification_round": rounds,
                            "appeal_used": used,
                            "appeal_from": source,
                        }
                        try:
                            expected = apply_transition(SimpleNamespace(**fields), action)
                        except IllegalTransition as exc:
                            with pytest.raises(IllegalTransition) as refused:
                                resolve_transition(SimpleNamespace(**fields), action)
                            assert str(refused.value) == str(exc)
                            continue
                        task = SimpleNamespace(**fields)
                        assert resolve_transition(task, action) == expected
                        assert task.state == state  # the task itself is not changed
                        checked += 1
    assert checked > 50


def test_first_row_names_columns_and_raises_driver_errors_as_sqlalchemy_ones(
    make_session: sessionmaker[Session],
) -> None:
    """The action path's read: named columns, and a database error keeps SQLAlchemy's type."""
    stmt = select(literal_column("1").label("one"), bindparam("x", type_=Integer).label("x"))
    with make_session() as s:
        row = first_row(s, stmt, {"x": 7})
        assert row is not None and (row.one, row.x) == (1, 7)
        assert first_row(s, stmt.where(literal_column("1") == 0), {"x": 7}) is None
        failing = select(func.abs(bindparam("x", type_=Integer)).label("q"))
        with pytest.raises(DBAPIError):  # integer overflow in SQLite, out of range in PG
            first_row(s, failing, {"x": -(2**63)})
        s.rollback()
        assert first_row(s, stmt, {"x": 8}).x == 8  # the session is usable after a rollback
