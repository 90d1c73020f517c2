"""From findings to tasks: grouping, priority, idempotency (a unique key in the DB), bad input."""

# ruff: noqa: F401, F811  (pytest fixtures imported from tasks_fixtures)

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from tasks_fixtures import db_url, make_findings, make_session, pg_template, pg_url, sqlite_url

from audit_lib.errors import DataError, PermissionDenied, SchemaError
from audit_lib.tasks.auditlog import verify
from audit_lib.tasks.intake import group_findings, task_keys, validate_findings
from audit_lib.tasks.models import AuditEvent, Task, TaskFinding
from audit_lib.tasks.service import get_user, tasks_from_findings


def _count(session, model) -> int:
    return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_intake_groups_by_customer_and_period(rng) -> None:
    f = make_findings(5, rng, per_customer=3)
    other = make_findings(5, rng, per_customer=1, period=("2024-04-01", "2024-04-30"))
    df = validate_findings(pd.concat([f, other], ignore_index=True))
    tasks = group_findings(df.assign(task_key=task_keys(df)))
    assert len(tasks) == 10
    march = tasks[tasks["period_start"] == pd.Timestamp("2024-03-01")].set_index("entity")
    expected = f.groupby("entity").agg(score=("score", "max"), money=("money_at_risk", "sum"))
    assert march.index.sort_values().tolist() == expected.index.tolist()
    np.testing.assert_allclose(march["score"].sort_index(), expected["score"])
    np.testing.assert_allclose(
        march["priority"].sort_index(), expected["score"] * expected["money"]
    )
    assert set(march["n_findings"]) == {3}
    assert set(march["themes"]) == {"abrupt_drop,theft_suspicion,zero_consumption"}
    assert march["title_zh"].str.endswith("（另 2 条）").all()


def test_intake_severity_is_the_highest_of_the_group(rng) -> None:
    f = make_findings(1, rng, per_customer=3)
    f["severity"] = ["low", "high", "medium"]
    df = validate_findings(f)
    assert group_findings(df.assign(task_key=task_keys(df)))["severity"].tolist() == ["high"]


def test_intake_is_idempotent_and_links_new_findings(make_session, rng) -> None:
    f = make_findings(40, rng, per_customer=2)
    with make_session() as s:
        aud = get_user(s, "aud_yz")
        first = tasks_from_findings(s, f, aud)
        s.commit()
        again = tasks_from_findings(s, f, aud)
        s.commit()
        assert (first.tasks_created, first.findings_linked) == (40, 80)
        assert (again.tasks_created, again.findings_linked, again.findings_skipped) == (0, 0, 80)
        extra = make_findings(40, rng, per_customer=4).iloc[2::4]  # a third theme for 40 customers
        third = tasks_from_findings(s, extra, aud)
        s.commit()
        assert (third.tasks_created, third.findings_linked) == (0, 40)
        assert _count(s, Task) == 40 and _count(s, TaskFinding) == 120
        # 11 users added, 40 tasks created, 40 tasks got a new finding linked
        assert verify(s).ok and _count(s, AuditEvent) == 11 + 40 + 40


def test_intake_unique_key_is_enforced_by_the_database(make_session, rng) -> None:
    with make_session() as s:
        tasks_from_findings(s, make_findings(1, rng), get_user(s, "aud_yz"))
        s.commit()
        row = s.execute(text("SELECT * FROM tasks")).mappings().one()
        copy = {k: v for k, v in row.items() if k != "id"}
        cols = ", ".join(copy)
        marks = ", ".join(f":{k}" for k in copy)
        with pytest.raises(IntegrityError):
            s.execute(text(f"INSERT INTO tasks ({cols}) VALUES ({marks})"), copy)
        s.rollback()
        fid = s.execute(text("SELECT * FROM task_findings")).mappings().one()
        again = {k: v for k, v in fid.items() if k != "id"}
        with pytest.raises(IntegrityError):
            s.execute(
                text(
                    f"INSERT INTO task_findings ({', '.join(again)}) "
                    f"VALUES ({', '.join(':' + k for k in again)})"
                ),
                again,
            )
        s.rollback()


def test_intake_keeps_evidence_links(make_session, rng) -> None:
    f = make_findings(2, rng)
    with make_session() as s:
        res = tasks_from_findings(s, f, get_user(s, "aud_yz"))
        s.commit()
        task = s.get(Task, res.task_ids[0])
        assert task is not None and task.notebook == "outputs/run-1/YZ/monitor.ipynb"
        links = s.execute(select(TaskFinding).where(TaskFinding.task_id == task.id)).scalars().all()
        assert [x.evidence for x in links] == ['{"days": 30}']
        assert task.due_at is not None and task.due_at > task.created_at


@pytest.mark.parametrize(
    ("mutate", "error", "where"),
    [
        (lambda f: f.drop(columns=["score"]), SchemaError, "field score"),
        (lambda f: f.assign(entity=[None, "1", "2"]), DataError, "field entity, row 0"),
        (lambda f: f.assign(severity=["low", "bad", "high"]), DataError, "field severity, row 1"),
        (lambda f: f.assign(finding_id=["a", "b", "a"]), DataError, "field finding_id, row 2"),
        (lambda f: f.assign(period_end=pd.Timestamp("2024-01-01")), DataError, "period_end, row 0"),
        (lambda f: f.assign(deadline_days=[10, 0, 5]), DataError, "deadline_days, row 1"),
    ],
)
def test_intake_bad_findings_named_by_field_and_row(rng, mutate, error, where) -> None:
    with pytest.raises(error, match=where):
        validate_findings(mutate(make_findings(3, rng)), source="x.parquet")


def test_intake_sets_the_strictest_themes_time_limit(make_session, rng) -> None:
    f = make_findings(3, rng, per_customer=2)  # two themes per customer
    f["deadline_days"] = [10, 15, 30, 20, None, None]  # the third: findings of old runs
    with make_session() as s:
        tasks_from_findings(s, f, get_user(s, "aud_yz"))
        s.commit()
        tasks = s.execute(select(Task).order_by(Task.entity)).scalars().all()
        limits = [None if t.deadline_at is None else t.deadline_at - t.created_at for t in tasks]
        assert limits == [pd.Timedelta(days=10), pd.Timedelta(days=20), None]


def test_intake_scope_and_role_checked(make_session, rng) -> None:
    with make_session() as s:
        with pytest.raises(PermissionDenied, match="bureau JB"):
            tasks_from_findings(s, make_findings(2, rng, bureau="JB"), get_user(s, "aud_yz"))
        with pytest.raises(PermissionDenied, match="may not create"):
            tasks_from_findings(s, make_findings(2, rng), get_user(s, "han_s1"))
        assert _count(s, Task) == 0


def test_intake_empty_frame_creates_nothing(make_session, rng) -> None:
    with make_session() as s:
        res = tasks_from_findings(s, make_findings(3, rng).iloc[:0], get_user(s, "city"))
        assert res.tasks_created == 0 and _count(s, Task) == 0


def test_intake_new_finding_updates_the_existing_task(make_session, rng) -> None:
    first = make_findings(1, rng, per_customer=1)
    first[["score", "severity", "money_at_risk", "kwh_at_risk"]] = [0.3, "low", 100.0, 10.0]
    more = make_findings(1, rng, per_customer=3).iloc[1:].reset_index(drop=True)
    more[["score", "money_at_risk", "kwh_at_risk"]] = [[0.9, 50.0, 5.0], [0.5, 20.0, None]]
    more["severity"] = ["high", "medium"]
    more["reason_en"] = ["theft suspected", "abrupt drop"]
    with make_session() as s:
        aud = get_user(s, "aud_yz")
        tid = tasks_from_findings(s, first, aud).task_ids[0]
        s.commit()
        res = tasks_from_findings(s, more, aud)
        s.commit()
        assert (res.tasks_created, res.findings_linked) == (0, 2)
        task = s.get(Task, tid, populate_existing=True)
        assert task is not None
        assert task.n_findings == 3 and task.version == 2
        assert task.themes == "abrupt_drop,theft_suspicion,zero_consumption"
        assert task.score == pytest.approx(0.9) and task.severity == "high"
        assert task.money_at_risk == pytest.approx(170.0)
        assert task.kwh_at_risk == pytest.approx(15.0)
        assert task.priority == pytest.approx(0.9 * 170.0)
        assert task.title_en == "theft suspected (+2 more)"
        assert task.title_zh.endswith("（另 2 条）")
        event = s.execute(
            select(AuditEvent).where(AuditEvent.action == "link_findings")
        ).scalar_one()
        assert (event.task_id, event.detail) == (tid, '{"findings":2}')
        assert verify(s).ok


def _archive(make_session, tid: int) -> None:
    from tasks_fixtures import LOOP_TO_ARCHIVE, drive

    drive(make_session, tid, LOOP_TO_ARCHIVE)


def test_intake_daily_findings_go_to_the_open_task(make_session, rng) -> None:
    days = [(f"2024-03-{d:02d}", f"2024-03-{d:02d}") for d in (1, 2, 3)]
    day = {p: make_findings(3, rng, stations=("YZ-S1",), period=p) for p in days}
    with make_session() as s:
        aud = get_user(s, "aud_yz")
        ids = tasks_from_findings(s, day[days[0]], aud).task_ids
        s.commit()
        second = tasks_from_findings(s, day[days[1]], aud)
        s.commit()
        again = tasks_from_findings(s, day[days[1]], aud)
        s.commit()
        assert (second.tasks_created, second.findings_linked) == (0, 3)
        assert (again.tasks_created, again.findings_linked, again.findings_skipped) == (0, 0, 3)
        assert _count(s, Task) == 3
        counts = s.execute(
            select(TaskFinding.task_id, func.count()).group_by(TaskFinding.task_id)
        ).all()
        assert sorted(counts) == [(i, 2) for i in sorted(ids)]
        assert set(s.execute(select(Task.n_findings)).scalars()) == {2}
    _archive(make_session, ids[0])
    with make_session() as s:
        aud = get_user(s, "aud_yz")
        s.execute(
            text("UPDATE tasks SET state = 'cancelled' WHERE id = :i"), {"i": ids[1]}
        )  # a cancelled task is closed too
        third = tasks_from_findings(s, day[days[2]], aud)
        s.commit()
        assert (third.tasks_created, third.findings_linked) == (2, 3)
        entity = s.execute(select(Task.entity).where(Task.id == ids[0])).scalar_one()
        fresh = s.execute(
            select(Task).where(Task.entity == entity, Task.id.not_in(ids))
        ).scalar_one()
        assert fresh.state == "new" and fresh.period_start.isoformat() == days[2][0]
        open_one = s.get(Task, ids[2], populate_existing=True)
        assert open_one is not None and open_one.n_findings == 3
        assert verify(s).ok


def test_intake_open_task_of_another_bureau_is_not_reused(make_session, rng) -> None:
    march = make_findings(2, rng, bureau="YZ")
    april = make_findings(2, rng, bureau="JB", period=("2024-04-01", "2024-04-30"))
    with make_session() as s:
        tasks_from_findings(s, march, get_user(s, "aud_yz"))
        res = tasks_from_findings(s, april, get_user(s, "city"))
        s.commit()
        assert res.tasks_created == 2 and _count(s, Task) == 4
