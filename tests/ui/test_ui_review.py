"""ReviewApp on a real SQLite database: filters, paging, actions, scope, evidence chart."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from tasks_fixtures import pg_template, pg_url  # noqa: F401  (fixtures)
from ui_fixtures import build_database, build_mart, submitted_ids

from audit_lib.data.access import Mart
from audit_lib.tasks.models import AuditEvent, Task
from audit_lib.ui.apps.review import ReviewApp


@pytest.fixture
def factory(tmp_path: Path) -> sessionmaker[Session]:
    return build_database(f"sqlite:///{tmp_path}/audit.db", np.random.default_rng(7))


def _state(factory: sessionmaker[Session], task_id: int) -> str:
    with factory() as session:
        return str(session.get(Task, task_id).state)  # type: ignore[union-attr]


def test_review_inbox_shows_only_the_reviewers_bureau(factory: sessionmaker[Session]) -> None:
    app = ReviewApp(factory, "rev_yz", page_size=50)
    assert app.page is not None
    assert app.page.total == 30
    assert {r["bureau"] for r in app.page.rows} == {"YZ"}
    assert [b for _, b in app.bureau_filter.options] == [None, "YZ"]
    city = ReviewApp(factory, "rev_city", page_size=50)
    assert city.page is not None and city.page.total == 38


def test_review_filters_state_theme_priority(factory: sessionmaker[Session]) -> None:
    app = ReviewApp(factory, "rev_yz")
    app.state_filter.value = "result_submitted"
    assert app.page is not None and app.page.total == 4
    assert {r["state"] for r in app.page.rows} == {"result_submitted"}
    app.state_filter.value = None
    app.theme_filter.value = "abrupt_drop"
    assert app.page.total == len(range(1, 30, 4))
    assert all("abrupt_drop" in r["themes"] for r in app.page.rows)
    app.theme_filter.value = None
    top = max(r["priority"] for r in app.page.rows)
    app.priority_filter.value = top
    assert app.page.total == 1 and app.page.rows[0]["priority"] == top


def test_review_sorts_and_pages(factory: sessionmaker[Session]) -> None:
    app = ReviewApp(factory, "rev_yz", page_size=10)
    first = app.page
    assert first is not None
    prios = [r["priority"] for r in first.rows]
    assert prios == sorted(prios, reverse=True)
    assert app.prev.disabled and not app.next.disabled
    app.next.click()
    second = app.page
    assert second is not None and app.offset == 10
    assert not {r["id"] for r in first.rows} & {r["id"] for r in second.rows}
    assert max(r["priority"] for r in second.rows) <= min(prios)
    app.sort_by.value = "id"
    app.descending.value = False
    assert app.offset == 0
    ids = [r["id"] for r in app.page.rows]
    assert ids == sorted(ids) and "1/3" in app.page_info.value


def test_review_approve_writes_task_and_audit_log(factory: sessionmaker[Session]) -> None:
    task_id = submitted_ids(factory, 1)[0]
    app = ReviewApp(factory, "rev_yz")
    app.state_filter.value = "result_submitted"
    app.inbox.value = task_id
    assert app.task is not None and app.task["id"] == task_id
    assert not app.buttons["start_review"].disabled and app.buttons["approve"].disabled
    app.buttons["start_review"].click()
    assert _state(factory, task_id) == "under_review"
    app.comment.value = "核实无误 verified"
    app.buttons["approve"].click()
    assert _state(factory, task_id) == "approved", app.status.value
    with factory() as session:
        events = session.execute(
            select(AuditEvent).where(AuditEvent.task_id == task_id).order_by(AuditEvent.id)
        ).scalars()
        last = list(events)[-1]
    assert (last.actor, last.action, last.before, last.after) == (
        "rev_yz",
        "approve",
        "under_review",
        "approved",
    )
    assert json.loads(last.detail)["comment"] == "核实无误 verified"
    assert app.page is not None and task_id not in {r["id"] for r in app.page.rows}
    assert "审核通过" in app.detail.value


def test_review_send_back_needs_a_comment(factory: sessionmaker[Session]) -> None:
    task_id = submitted_ids(factory, 1)[0]
    app = ReviewApp(factory, "rev_yz")
    app.open_task(task_id)
    app.buttons["start_review"].click()
    app.buttons["send_back"].click()
    assert _state(factory, task_id) == "under_review"
    assert "comment" in app.status.value
    app.comment.value = "证据不足 more evidence"
    app.buttons["send_back"].click()
    assert _state(factory, task_id) == "handling"


def test_review_stale_version_is_a_conflict(factory: sessionmaker[Session]) -> None:
    task_id = submitted_ids(factory, 1)[0]
    app = ReviewApp(factory, "rev_yz")
    other = ReviewApp(factory, "rev_city")
    app.open_task(task_id)
    other.open_task(task_id)
    other.buttons["start_review"].click()
    app.buttons["start_review"].click()
    assert "已被他人修改" in app.status.value
    assert _state(factory, task_id) == "under_review"


def test_review_other_bureau_sees_nothing(factory: sessionmaker[Session]) -> None:
    task_id = submitted_ids(factory, 1)[0]
    app = ReviewApp(factory, "rev_jb", page_size=50)
    assert app.page is not None and app.page.total == 8
    assert {r["bureau"] for r in app.page.rows} == {"JB"}
    app.open_task(task_id)
    assert app.task is None
    assert "无权查看" in app.status.value and "YZ" not in app.detail.value
    assert all(b.disabled for b in app.buttons.values())


def test_review_evidence_chart_and_masked_customer(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    mart = Mart(build_mart(tmp_path / "mart"))
    app = ReviewApp(factory, "rev_yz", mart=mart, lang="en")
    with factory() as session:
        task_id = session.execute(select(Task.id).where(Task.entity == "1000000001")).scalar_one()
    app.open_task(task_id)
    shown = app.chart.shown
    assert shown is not None
    assert len(shown.kwh) > 50 and len(shown.peers) > 0 and len(shown.loss) > 0
    assert "客**" in app.detail.value and "客户1" not in app.detail.value
    assert "Findings and reasons" in app.detail.value


@pytest.mark.pg
def test_review_filters_and_approve_on_postgresql(pg_url: str) -> None:  # noqa: F811
    factory = build_database(pg_url, np.random.default_rng(7))
    try:
        task_id = submitted_ids(factory, 1)[0]
        app = ReviewApp(factory, "rev_yz")
        app.theme_filter.value = "abrupt_drop"
        assert app.page is not None and app.page.total == len(range(1, 30, 4))
        app.theme_filter.value = None
        app.state_filter.value = "result_submitted"
        assert app.page.total == 4
        app.inbox.value = task_id
        app.buttons["start_review"].click()
        app.buttons["approve"].click()
        assert _state(factory, task_id) == "approved", app.status.value
    finally:
        factory.kw["bind"].dispose()
