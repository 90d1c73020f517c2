"""Deadlines per state and theme, overdue listing, escalation, outbox and SMTP on loopback."""

# ruff: noqa: F401, F811  (pytest fixtures imported from tasks_fixtures)

from __future__ import annotations

import datetime as dt
import email
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from tasks_fixtures import (
    db_url,
    drive,
    make_findings,
    make_session,
    pg_template,
    pg_url,
    sqlite_url,
)

from audit_lib.errors import ConfigError, PermissionDenied
from audit_lib.tasks.auditlog import verify
from audit_lib.tasks.deadlines import DEFAULT_DAYS, DeadlinePolicy
from audit_lib.tasks.escalation import escalate_overdue, notify_near_deadline, overdue_tasks
from audit_lib.tasks.models import Notification, Task, TaskDeadline, utcnow
from audit_lib.tasks.notify import SmtpChannel, deliver_pending
from audit_lib.tasks.queries import list_tasks
from audit_lib.tasks.service import act, commit_or_conflict, get_user, tasks_from_findings

T0 = dt.datetime(2026, 1, 5, 8, 0)


def test_deadline_policy_theme_override_is_strictest(tmp_path) -> None:
    path = tmp_path / "deadlines.yml"
    path.write_text("default: {handling: 8}\nthemes:\n  theft_suspicion: {handling: 3}\n")
    policy = DeadlinePolicy.from_yaml(path)
    assert policy.days_for("handling") == 8
    assert policy.days_for("handling", ["zero_consumption", "theft_suspicion"]) == 3
    assert policy.days_for("rectifying") == DEFAULT_DAYS["rectifying"]
    assert policy.days_for("archived") is None
    assert policy.due_at("handling", ["theft_suspicion"], T0) == T0 + dt.timedelta(days=3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"default": {"handlng": 3}}, "unknown state 'handlng'"),
        ({"themes": {"t": {"handling": -1}}}, "themes.t.handling: days must be > 0"),
        ({"default": {"handling": "soon"}}, "must be a number"),
        ({"deadline": {}}, "unknown keys"),
    ],
)
def test_deadline_policy_rejects_bad_config(data, message) -> None:
    with pytest.raises(ConfigError, match=message):
        DeadlinePolicy.from_mapping(data)


def _tasks(factory, rng, n: int = 4) -> list[int]:
    with factory() as s:
        res = tasks_from_findings(
            s, make_findings(n, rng, stations=("YZ-S1",)), get_user(s, "aud_yz"), now=T0
        )
        s.commit()
    return res.task_ids


def test_overdue_lists_and_escalates_station_bureau_city(make_session, rng) -> None:
    ids = _tasks(make_session, rng)
    policy = DeadlinePolicy.from_mapping({"themes": {"zero_consumption": {"dispatched": 1}}})
    with make_session() as s:
        for tid in ids[:2]:
            act(s, tid, "dispatch", "aud_yz", now=T0, deadlines=policy)
        commit_or_conflict(s)
    late = T0 + dt.timedelta(days=1, hours=1)  # dispatched tasks late; `new` ones (2 days) not
    with make_session() as s:
        city = get_user(s, "city")
        assert sorted(t.id for t in overdue_tasks(s, city, late)) == sorted(ids[:2])
        assert list_tasks(s, "han_s1", overdue=True, now=late).total == 2
        assert overdue_tasks(s, get_user(s, "aud_jb"), late) == []
        with pytest.raises(PermissionDenied):
            escalate_overdue(s, get_user(s, "han_s1"), late)
        done = escalate_overdue(s, city, late, policy)
        commit_or_conflict(s)
        assert [(e.from_level, e.to_level) for e in done] == [(0, 1), (0, 1)]
        # the bureau got a fresh window: not overdue again at once
        assert escalate_overdue(s, city, late, policy) == []
        later = late + dt.timedelta(days=1, hours=1)
        levels = {e.task_id: e.to_level for e in escalate_overdue(s, city, later, policy)}
        assert levels == {ids[0]: 2, ids[1]: 2, ids[2]: 1, ids[3]: 1}  # `new` ones now late too
        commit_or_conflict(s)
        again = escalate_overdue(s, city, later + dt.timedelta(days=5), policy)
        assert {e.task_id for e in again} == {ids[2], ids[3]}  # city level is the top
        commit_or_conflict(s)
        notes = s.execute(select(Notification.kind, Notification.recipient)).all()
        kinds = {(k, r) for k, r in notes}
        assert ("dispatch", "han_s1") in kinds and ("dispatch", "han_jb") not in kinds
        assert ("escalated", "aud_yz") in kinds and ("escalated", "city") in kinds
        assert ("overdue", "han_s1") in kinds
        assert verify(s).ok
    drive(make_session, ids[0], [("accept", "han_s1", {})])
    with make_session() as s:
        task = s.get(Task, ids[0])
        assert task is not None and task.escalation_level == 0
        stay = s.execute(
            select(TaskDeadline).where(
                TaskDeadline.task_id == ids[0], TaskDeadline.state == "dispatched"
            )
        ).scalar_one()
        assert stay.overdue


def test_near_deadline_reminds_once(make_session, rng) -> None:
    ids = _tasks(make_session, rng, n=2)
    with make_session() as s:
        assert notify_near_deadline(s, T0) == 0
        near = T0 + dt.timedelta(days=DEFAULT_DAYS["new"] * 0.9)
        sent = notify_near_deadline(s, near)
        s.commit()
        assert sent == 2 * 1  # one bureau auditor of YZ owns `new` tasks
        assert notify_near_deadline(s, near) == 0
        rows = s.execute(select(Notification).where(Notification.kind == "near_deadline")).scalars()
        assert sorted(n.task_id for n in rows) == sorted(ids)


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[_Inbox, int]]:
    inbox, port = _Inbox(), _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def test_outbox_delivered_over_smtp_on_loopback(
    make_session, rng, smtp_server, monkeypatch
) -> None:
    inbox, port = smtp_server
    ids = _tasks(make_session, rng, n=2)
    drive(make_session, ids[0], [("dispatch", "aud_yz", {})])
    monkeypatch.setenv("AUDIT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("AUDIT_SMTP_PORT", str(port))
    channel = SmtpChannel.from_env()
    assert channel is not None
    with make_session() as s:
        sent, failed = deliver_pending(s, channel)
        s.commit()
        assert (sent, failed) == (2, 0)  # both YZ-S1 handlers
        assert deliver_pending(s, channel) == (0, 0)
        rows = s.execute(select(Notification)).scalars().all()
        assert all(r.sent_at is not None and r.channel == "smtp" for r in rows)
    assert sorted(m["To"] for m in inbox.messages) == [
        "han_s1@example.test",
        "han_s1b@example.test",
    ]
    assert f"[稽查任务 {ids[0]}]" in str(
        email.header.make_header(email.header.decode_header(inbox.messages[0]["Subject"]))
    )


def test_outbox_keeps_failed_deliveries_for_retry(make_session, rng) -> None:
    ids = _tasks(make_session, rng, n=1)
    drive(make_session, ids[0], [("dispatch", "aud_yz", {})])
    dead = SmtpChannel(host="127.0.0.1", port=_free_port(), timeout=2)
    with make_session() as s:
        assert deliver_pending(s, dead) == (0, 2)
        s.commit()
        rows = s.execute(select(Notification)).scalars().all()
        assert all(r.sent_at is None and r.attempts == 1 and r.last_error for r in rows)


def test_smtp_off_without_host(monkeypatch) -> None:
    monkeypatch.delenv("AUDIT_SMTP_HOST", raising=False)
    assert SmtpChannel.from_env() is None
    monkeypatch.setenv("AUDIT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("AUDIT_SMTP_PORT", "twenty-five")
    with pytest.raises(ConfigError, match="AUDIT_SMTP_PORT"):
        SmtpChannel.from_env()
