"""Roles, bureau/station scope, four-eyes and comment rules, on SQLite and PostgreSQL."""

# ruff: noqa: F401, F811  (pytest fixtures imported from tasks_fixtures)

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from tasks_fixtures import (
    db_url,
    drive,
    make_findings,
    make_session,
    pg_template,
    pg_url,
    sqlite_url,
)

from audit_lib.errors import ConfigError, ConflictError, NotFound, PermissionDenied
from audit_lib.tasks.models import AuditEvent, Task
from audit_lib.tasks.queries import list_tasks, show_task
from audit_lib.tasks.service import act, add_user, get_user, tasks_from_findings


@pytest.fixture
def task_s1(make_session, rng) -> int:
    """A task of station YZ-S1, in state ``new``."""
    with make_session() as s:
        res = tasks_from_findings(
            s, make_findings(1, rng, stations=("YZ-S1",)), get_user(s, "aud_yz")
        )
        s.commit()
    return res.task_ids[0]


def _state(factory, tid: int) -> tuple[str, int]:
    with factory() as s:
        task = s.get(Task, tid)
        assert task is not None
        return task.state, task.version


@pytest.mark.parametrize(
    ("user", "why"),
    [("han_s1", "role"), ("rev_yz", "role"), ("owner", "role"), ("aud_jb", "out of scope")],
)
def test_policy_dispatch_needs_auditor_in_scope(make_session, task_s1, user, why) -> None:
    with make_session() as s, pytest.raises(PermissionDenied, match=why):
        act(s, task_s1, "dispatch", user)
    assert _state(make_session, task_s1) == ("new", 1)


def test_policy_city_auditor_covers_every_bureau(make_session, task_s1) -> None:
    drive(make_session, task_s1, [("dispatch", "city", {})])
    assert _state(make_session, task_s1)[0] == "dispatched"


def test_policy_station_handler_limited_to_own_station(make_session, task_s1) -> None:
    drive(make_session, task_s1, [("dispatch", "aud_yz", {})])
    with make_session() as s, pytest.raises(PermissionDenied, match="out of scope"):
        act(s, task_s1, "accept", "han_s2")
    with make_session() as s, pytest.raises(PermissionDenied, match="out of scope"):
        show_task(s, task_s1, "han_jb")
    drive(make_session, task_s1, [("accept", "han_s1", {})])
    assert _state(make_session, task_s1)[0] == "handling"


def test_policy_four_eyes_handler_cannot_review(make_session, task_s1) -> None:
    with make_session() as s:
        add_user(s, "dual", "reviewer", "YZ")
        s.commit()
    drive(
        make_session,
        task_s1,
        [
            ("dispatch", "aud_yz", {}),
            ("accept", "han_s1", {}),
            ("submit_result", "han_s1", {"outcome": "no_problem"}),
        ],
    )
    with make_session() as s:
        # the handler's name is recorded; a reviewer with that name would be refused
        task = s.get(Task, task_s1)
        assert task is not None and task.handled_by == "han_s1"
        task.handled_by = "dual"  # simulate: the reviewer handled it (same person)
        s.commit()
    with make_session() as s, pytest.raises(PermissionDenied, match="four-eyes"):
        act(s, task_s1, "start_review", "dual")
    drive(make_session, task_s1, [("start_review", "rev_yz", {}), ("approve", "rev_yz", {})])
    assert _state(make_session, task_s1)[0] == "approved"


def test_policy_four_eyes_no_approving_own_rectification(make_session, task_s1) -> None:
    drive(
        make_session,
        task_s1,
        [
            ("dispatch", "aud_yz", {}),
            ("accept", "han_s1", {}),
            ("submit_result", "han_s1", {"outcome": "violation"}),
            ("start_review", "rev_city", {}),
            ("require_rectification", "rev_city", {"comment": "整改 fix it"}),
            ("start_rectification", "han_s1b", {}),
            ("submit_rectification", "han_s1b", {}),
            ("start_review", "rev_yz", {}),
        ],
    )
    with make_session() as s:
        task = s.get(Task, task_s1)
        assert task is not None and task.rectified_by == "han_s1b"
        task.rectified_by = "rev_yz"  # the reviewer did the rectification himself
        s.commit()
    with make_session() as s, pytest.raises(PermissionDenied, match="four-eyes"):
        act(s, task_s1, "approve", "rev_yz")
    drive(make_session, task_s1, [("approve", "rev_city", {})])


@pytest.mark.parametrize("action", ["send_back", "require_rectification"])
def test_policy_reject_and_send_back_need_comment(make_session, task_s1, action) -> None:
    drive(
        make_session,
        task_s1,
        [
            ("dispatch", "aud_yz", {}),
            ("accept", "han_s1", {}),
            ("submit_result", "han_s1", {"outcome": "no_problem"}),
            ("start_review", "rev_yz", {}),
        ],
    )
    for comment in (None, "   "):
        with make_session() as s, pytest.raises(PermissionDenied, match="comment"):
            act(s, task_s1, action, "rev_yz", comment=comment)
    drive(make_session, task_s1, [(action, "rev_yz", {"comment": "证据不足 weak evidence"})])


def test_policy_cancel_needs_reason_and_appeal_ruled_by_city(make_session, task_s1) -> None:
    with make_session() as s, pytest.raises(PermissionDenied, match="reason"):
        act(s, task_s1, "cancel", "aud_yz")
    drive(
        make_session,
        task_s1,
        [
            ("dispatch", "aud_yz", {}),
            ("appeal", "han_s1", {"comment": "表计已校验 meter was tested"}),
        ],
    )
    with make_session() as s, pytest.raises(PermissionDenied, match="role"):
        act(s, task_s1, "reject_appeal", "aud_yz", comment="no")
    drive(
        make_session, task_s1, [("reject_appeal", "city", {"comment": "证据充分 evidence holds"})]
    )
    with make_session() as s, pytest.raises(Exception, match="cannot appeal"):
        act(s, task_s1, "appeal", "han_s1", comment="again")
    drive(make_session, task_s1, [("cancel", "aud_yz", {"comment": "重复任务 duplicate"})])
    assert _state(make_session, task_s1)[0] == "cancelled"


def test_policy_list_only_shows_scope(make_session, rng) -> None:
    with make_session() as s:
        tasks_from_findings(s, make_findings(6, rng), get_user(s, "aud_yz"))
        tasks_from_findings(
            s,
            make_findings(4, rng, bureau="JB", stations=("JB-S1",), prefix="9"),
            get_user(s, "aud_jb"),
        )
        s.commit()
        assert list_tasks(s, "city").total == 10
        assert list_tasks(s, "aud_yz").total == 6
        assert list_tasks(s, "han_s1").total == 3
        assert list_tasks(s, "han_jb").total == 4
        assert list_tasks(s, "aud_yz", bureau="JB").total == 0
        page = list_tasks(s, "city", limit=3, offset=3)
        assert len(page.rows) == 3 and page.total == 10
        prios = [r["priority"] for r in list_tasks(s, "city", limit=10).rows]
        assert prios == sorted(prios, reverse=True)


def test_policy_unknown_user_and_bad_users_refused(make_session, task_s1) -> None:
    with make_session() as s:
        with pytest.raises(NotFound, match="unknown user"):
            act(s, task_s1, "dispatch", "nobody")
        with pytest.raises(ConfigError, match="unknown role"):
            add_user(s, "x", "boss")
        with pytest.raises(ConfigError, match="needs --bureau"):
            add_user(s, "y", "station_handler")
        with pytest.raises(ConflictError, match="exists"):
            add_user(s, "city", "city_auditor")


def test_policy_refusals_leave_no_log_entry(make_session, task_s1) -> None:
    with make_session() as s:
        before = s.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    for user in ("han_s1", "aud_jb", "owner"):
        with make_session() as s, pytest.raises(PermissionDenied):
            act(s, task_s1, "dispatch", user)
    with make_session() as s:
        assert s.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == before
