"""A scripted demo of the closed loop: users, tasks from findings, some moved along the loop.

Given a findings frame (from detection), :func:`run_demo` adds demo users for every bureau and
station concerned, creates the tasks, and then moves the highest-priority ones along: some
dispatched, some being handled, some reviewed and archived (one through a rectification
round), one appealed (申诉) and one overdue (dispatched in the past and escalated). Running it
again adds nothing (users and tasks exist; it only moves tasks still in ``new``).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from audit_lib.tasks.escalation import escalate_overdue
from audit_lib.tasks.models import Task, User, utcnow
from audit_lib.tasks.service import act, add_user, commit_or_conflict, get_user, tasks_from_findings

Step = tuple[str, str, dict[str, object]]


@dataclass
class DemoSummary:
    """What the demo did: users added, tasks created, tasks per final demo state."""

    users_added: int = 0
    tasks_created: int = 0
    moved: Counter[str] = field(default_factory=Counter)


def _user(session: Session, name: str, role: str, bureau: str | None, station: str | None) -> int:
    if session.execute(select(User.id).where(User.name == name)).first():
        return 0
    add_user(session, name, role, bureau, station, email=f"{name}@demo.invalid")
    return 1


def add_demo_users(session: Session, findings: pd.DataFrame) -> int:
    """City auditor, admin, theme owner; per bureau an auditor and a reviewer; per station a
    handler (a bureau-wide handler where findings have no station)."""
    added = _user(session, "demo_city", "city_auditor", None, None)
    added += _user(session, "demo_admin", "admin", None, None)
    added += _user(session, "demo_owner", "theme_owner", None, None)
    for bureau in sorted(findings["bureau"].astype(str).unique()):
        added += _user(session, f"aud_{bureau}", "bureau_auditor", bureau, None)
        added += _user(session, f"rev_{bureau}", "reviewer", bureau, None)
        added += _user(session, f"han_{bureau}", "station_handler", bureau, None)
    pairs = findings[["bureau", "station_id"]].dropna().drop_duplicates()
    for bureau, station in pairs.itertuples(index=False, name=None):
        added += _user(session, f"han_{station}", "station_handler", str(bureau), str(station))
    return added


def _script(task: Task) -> dict[str, list[Step]]:
    aud, rev = f"aud_{task.bureau}", f"rev_{task.bureau}"
    han = f"han_{task.station_id}" if task.station_id else f"han_{task.bureau}"
    handled: list[Step] = [
        ("dispatch", aud, {}),
        ("accept", han, {}),
        (
            "submit_result",
            han,
            {
                "outcome": "confirmed_theft",
                "amounts": {
                    "backbilled_kwh": round(task.kwh_at_risk, 1),
                    "backbilled_money": round(task.money_at_risk, 2),
                },
            },
        ),
    ]
    return {
        "dispatched": [("dispatch", aud, {})],
        "handling": handled[:2],
        "result_submitted": handled,
        "archived": [
            *handled,
            ("start_review", rev, {}),
            ("approve", rev, {}),
            ("archive", aud, {}),
        ],
        "rectifying": [
            *handled,
            ("start_review", rev, {}),
            (
                "require_rectification",
                rev,
                {"comment": "更换表计并追补电费 replace meter, back-bill"},
            ),
            ("start_rectification", han, {}),
        ],
        "appealed": [
            ("dispatch", aud, {}),
            ("appeal", han, {"comment": "用户称表计已校验 customer says meter was tested"}),
        ],
    }


PLAN: tuple[tuple[str, int], ...] = (
    ("archived", 2),
    ("rectifying", 1),
    ("result_submitted", 2),
    ("handling", 2),
    ("appealed", 1),
    ("dispatched", 3),
)


def run_demo(
    factory: sessionmaker[Session], findings: pd.DataFrame, now: dt.datetime | None = None
) -> DemoSummary:
    """Create demo users and tasks from ``findings`` and move some along the loop."""
    now = now or utcnow()
    summary = DemoSummary()
    with factory() as s:
        summary.users_added = add_demo_users(s, findings)
        commit_or_conflict(s)
        result = tasks_from_findings(s, findings, get_user(s, "demo_city"), now=now)
        commit_or_conflict(s)
        summary.tasks_created = result.tasks_created
        fresh = s.execute(
            select(Task).where(Task.state == "new").order_by(Task.priority.desc(), Task.id)
        ).scalars()
        queue = list(fresh)
    for target, count in PLAN:
        for _ in range(count):
            if not queue:
                return summary
            task = queue.pop(0)
            _play(factory, task.id, _script(task)[target], now)
            summary.moved[target] += 1
    if queue:  # one overdue: dispatched two weeks ago, escalated now
        task = queue.pop(0)
        _play(factory, task.id, _script(task)["dispatched"], now - dt.timedelta(days=14))
        with factory() as s:
            escalate_overdue(s, get_user(s, "demo_city"), now)
            commit_or_conflict(s)
        summary.moved["overdue"] += 1
    return summary


def _play(
    factory: sessionmaker[Session], task_id: int, steps: list[Step], now: dt.datetime
) -> None:
    for action, user, kwargs in steps:
        with factory() as s:
            act(s, task_id, action, user, now=now, **kwargs)  # type: ignore[arg-type]
            commit_or_conflict(s)
