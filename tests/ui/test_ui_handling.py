"""HandlingApp on a real SQLite database: accept, submit with outcome and amounts, attach,
appeal; scope of a station handler."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from tasks_fixtures import drive
from ui_fixtures import build_database

from audit_lib.tasks.models import Attachment, AuditEvent, Outcome, Task
from audit_lib.ui.apps.handling import HandlingApp


@pytest.fixture
def factory(tmp_path: Path) -> sessionmaker[Session]:
    return build_database(f"sqlite:///{tmp_path}/audit.db", np.random.default_rng(3), submitted=0)


def _dispatched(factory: sessionmaker[Session], station: str = "YZ-S1") -> int:
    with factory() as session:
        task_id = session.execute(
            select(Task.id).where(Task.station_id == station).order_by(Task.id).limit(1)
        ).scalar_one()
    drive(factory, task_id, [("dispatch", "aud_yz", {})])
    return int(task_id)


def test_handling_station_scope(factory: sessionmaker[Session]) -> None:
    app = HandlingApp(factory, "han_s1", page_size=50)
    assert app.page is not None and app.page.total > 0
    assert {r["station_id"] for r in app.page.rows} == {"YZ-S1"}
    other = _dispatched(factory, "YZ-S2")
    app.open_task(other)
    assert app.task is None and "无权查看" in app.status.value


def test_handling_submit_result_with_amounts(factory: sessionmaker[Session]) -> None:
    task_id = _dispatched(factory)
    app = HandlingApp(factory, "han_s1")
    app.open_task(task_id)
    app.buttons["accept"].click()
    app.comment.value = "现场查实表计短接 meter bypassed on site"
    app.buttons["submit_result"].click()
    assert "outcome" in app.status.value  # the service needs an outcome
    app.outcome.value = "confirmed_theft"
    app.kwh.value = 1200.0
    app.money.value = 624.0
    app.penalty.value = 1872.0
    app.buttons["submit_result"].click()
    with factory() as session:
        task = session.get(Task, task_id)
        outcome = session.execute(select(Outcome).where(Outcome.task_id == task_id)).scalar_one()
        last = (
            session.execute(
                select(AuditEvent)
                .where(AuditEvent.task_id == task_id)
                .order_by(AuditEvent.id.desc())
            )
            .scalars()
            .first()
        )
    assert task is not None and task.state == "result_submitted" and task.handled_by == "han_s1"
    assert (outcome.kind, outcome.backbilled_kwh, outcome.backbilled_money, outcome.penalty) == (
        "confirmed_theft",
        1200.0,
        624.0,
        1872.0,
    )
    assert last is not None and (last.actor, last.action) == ("han_s1", "submit_result")
    assert app.outcome.value is None and app.kwh.value == 0


def test_handling_attachment_and_appeal(
    factory: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_ATTACHMENTS", str(tmp_path / "att"))
    task_id = _dispatched(factory)
    app = HandlingApp(factory, "han_s1")
    app.open_task(task_id)
    svg = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"
    app.upload.value = (
        {"name": "seal.svg", "type": "image/svg+xml", "size": len(svg), "content": memoryview(svg),
         "last_modified": dt.datetime(2025, 3, 1, tzinfo=dt.UTC)},
    )  # fmt: skip
    app.attach.click()
    assert "file type .svg not taken" in app.status.value  # an SVG can carry a script
    content = b"\xff\xd8\xff\xe0" + "现场照片 photo".encode()
    app.upload.value = (
        {"name": "../照片 1.jpg", "type": "image/jpeg", "size": len(content),
         "content": memoryview(content),
         "last_modified": dt.datetime(2025, 3, 1, tzinfo=dt.UTC)},
    )  # fmt: skip
    app.attach.click()
    with factory() as session:
        row = session.execute(select(Attachment).where(Attachment.task_id == task_id)).scalar_one()
    assert row.sha256 == hashlib.sha256(content).hexdigest() and row.added_by == "han_s1"
    assert row.path == f"{task_id}/{row.sha256}.jpg"
    assert (tmp_path / "att" / row.path).read_bytes() == content
    assert "audit-attachment-link" in app.detail.value and row.sha256[:12] in app.detail.value
    app.buttons["appeal"].click()
    assert "comment" in app.status.value
    app.comment.value = "用户已办理暂停 the customer had a suspension"
    app.buttons["appeal"].click()
    with factory() as session:
        task = session.get(Task, task_id)
    assert task is not None and task.state == "appealed" and task.appealed_by == "han_s1"
    assert app.buttons["appeal"].disabled
