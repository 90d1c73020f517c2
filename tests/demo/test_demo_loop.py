"""The scripted demo, on a synthetic findings frame: every stage of the loop is represented."""

# ruff: noqa: F401, F811  (pytest fixtures imported from tasks_fixtures)

from __future__ import annotations

from collections import Counter

import pandas as pd
from sqlalchemy import func, select
from tasks_fixtures import db_url, make_findings, pg_template, pg_url, sqlite_url

from audit_lib.db import create_engine, session_factory
from audit_lib.tasks.auditlog import seal, verify
from audit_lib.demo.loop import run_demo
from audit_lib.tasks.models import Notification, Outcome, Task


def test_demo_moves_tasks_along_the_loop(db_url, rng) -> None:
    findings = pd.concat(
        [
            make_findings(20, rng, per_customer=2),
            make_findings(10, rng, bureau="JB", stations=("JB-S1", "JB-S2"), prefix="8"),
        ],
        ignore_index=True,
    )
    engine = create_engine(db_url)
    factory = session_factory(engine)
    summary = run_demo(factory, findings)
    assert summary.tasks_created == 30 and summary.users_added == 3 + 2 * 3 + 4
    assert summary.moved == Counter(
        {
            "archived": 2,
            "rectifying": 1,
            "result_submitted": 2,
            "handling": 2,
            "appealed": 1,
            "dispatched": 3,
            "overdue": 1,
        }
    )
    with factory() as s:
        states = Counter(s.execute(select(Task.state)).scalars())
        assert states == Counter(
            {
                "new": 30 - 12,
                "dispatched": 4,
                "handling": 2,
                "result_submitted": 2,
                "archived": 2,
                "rectifying": 1,
                "appealed": 1,
            }
        )
        escalated = s.execute(select(Task).where(Task.escalation_level > 0)).scalars().all()
        assert len(escalated) == 1 and escalated[0].state == "dispatched"
        assert s.execute(select(func.count()).select_from(Outcome)).scalar_one() == 2 + 1 + 2
        assert s.execute(select(func.count()).select_from(Notification)).scalar_one() > 0
        seal(s)
        assert verify(s).ok
    again = run_demo(factory, findings)  # idempotent: nothing new, only `new` tasks move
    assert again.tasks_created == 0 and again.users_added == 0
    engine.dispose()
