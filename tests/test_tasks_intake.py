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
    ],
)
def test_intake_bad_findings_named_by_field_and_row(rng, mutate, error, where) -> None:
    with pytest.raises(error, match=where):
        validate_findings(mutate(make_findings(3, rng)), source="x.parquet")


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
