"""Property tests: random actions by random users, checked against an independent oracle.

Whatever the sequence: a successful action is one the loop allows from the task's state, done
by a user of an allowed role within scope; a refused action changes nothing; the log verifies.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st
from tasks_fixtures import USERS, add_users, make_findings

from audit_lib.db import Base, create_engine, session_factory
from audit_lib.errors import AuditError
from audit_lib.tasks.auditlog import ensure_head, seal, verify
from audit_lib.tasks.models import Task
from audit_lib.tasks.service import act, commit_or_conflict, get_user, tasks_from_findings

OPEN = [
    "new",
    "dispatched",
    "handling",
    "result_submitted",
    "under_review",
    "approved",
    "rectification_required",
    "rectifying",
    "rectification_submitted",
    "appealed",
]
NEXT = {
    ("new", "dispatch"): "dispatched",
    ("dispatched", "accept"): "handling",
    ("handling", "submit_result"): "result_submitted",
    ("result_submitted", "start_review"): "under_review",
    ("rectification_submitted", "start_review"): "under_review",
    ("under_review", "approve"): "approved",
    ("under_review", "require_rectification"): "rectification_required",
    ("under_review", "send_back"): "handling|rectifying",
    ("rectification_required", "start_rectification"): "rectifying",
    ("rectifying", "submit_rectification"): "rectification_submitted",
    ("approved", "archive"): "archived",
    ("appealed", "grant_appeal"): "archived",
    ("appealed", "reject_appeal"): "dispatched|handling|rectification_required|rectifying",
    **{
        (s, "appeal"): "appealed"
        for s in ("dispatched", "handling", "rectification_required", "rectifying")
    },
    **{(s, "cancel"): "cancelled" for s in OPEN},
}
ROLES = {
    "dispatch": {"city_auditor", "bureau_auditor"},
    "archive": {"city_auditor", "bureau_auditor"},
    "cancel": {"city_auditor", "bureau_auditor", "admin"},
    "grant_appeal": {"city_auditor"},
    "reject_appeal": {"city_auditor"},
    **{
        a: {"station_handler"}
        for a in (
            "accept",
            "submit_result",
            "appeal",
            "start_rectification",
            "submit_rectification",
        )
    },
    **{a: {"reviewer"} for a in ("start_review", "approve", "require_rectification", "send_back")},
}
SCOPE = {name: (role, bureau, station) for name, role, bureau, station in USERS}
TASKS = [("YZ", "YZ-S1"), ("YZ", "YZ-S2"), ("JB", "JB-S1")]


def _in_scope(user: str, bureau: str, station: str) -> bool:
    _, ub, us = SCOPE[user]
    return ub is None or (ub == bureau and (us is None or us == station))


def _setup(directory: str):
    engine = create_engine(f"sqlite:///{Path(directory) / 'p.db'}")
    Base.metadata.create_all(engine)
    factory = session_factory(engine)
    rng = np.random.default_rng(1)
    ids = []
    with factory() as s:
        ensure_head(s)
        add_users(s)
        for i, (bureau, station) in enumerate(TASKS):
            found = make_findings(1, rng, bureau=bureau, stations=(station,), prefix=str(i))
            ids += tasks_from_findings(s, found, get_user(s, "city")).task_ids
        s.commit()
    return engine, factory, ids


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.integers(5, 40))
def test_random_actions_respect_machine_scope_and_log(data, n_steps) -> None:
    wins = 0
    with tempfile.TemporaryDirectory() as directory:
        engine, factory, ids = _setup(directory)
        try:
            for _ in range(n_steps):
                index = data.draw(st.integers(0, len(TASKS) - 1))
                tid = ids[index]
                bureau, station = TASKS[index]
                with factory() as s:
                    before = s.get(Task, tid)
                    assert before is not None
                    state, version = before.state, before.version
                # mostly plausible moves (so the loop really advances), sometimes anything
                legal = sorted(a for (st_, a) in NEXT if st_ == state and a != "cancel")
                legal = legal or sorted(ROLES)
                action = data.draw(st.sampled_from(legal) | st.sampled_from(sorted(ROLES)))
                fitting = [
                    u
                    for u, (role, _, _) in SCOPE.items()
                    if role in ROLES[action] and _in_scope(u, bureau, station)
                ] or sorted(SCOPE)
                user = data.draw(st.sampled_from(fitting) | st.sampled_from(sorted(SCOPE)))
                comment = data.draw(st.sampled_from(["理由 reason", None]))
                outcome = data.draw(st.sampled_from(["confirmed_theft", "no_problem", None]))
                with factory() as s:
                    try:
                        act(s, tid, action, user, comment=comment, outcome=outcome)
                        commit_or_conflict(s)
                        ok = True
                    except AuditError:
                        s.rollback()
                        ok = False
                with factory() as s:
                    after = s.get(Task, tid)
                    assert after is not None
                    if not ok:
                        assert (after.state, after.version) == (state, version)
                        continue
                    assert (state, action) in NEXT, f"{action} allowed from {state}"
                    assert after.state in NEXT[(state, action)].split("|")
                    assert SCOPE[user][0] in ROLES[action], f"{user} did {action}"
                    assert _in_scope(user, bureau, station), f"{user} out of scope did {action}"
                    assert after.version == version + 1
                    wins += 1
            with factory() as s:
                seal(s)
                result = verify(s)
                assert result.ok and result.unsealed == 0, result.message()
                assert result.checked == len(USERS) + len(TASKS) + wins
            target(float(wins))  # steer toward long, successful runs through the loop
        finally:
            engine.dispose()
