"""The hash-chained audit log: verify passes on honest logs and names the first tampered row."""

# ruff: noqa: F401, F811  (pytest fixtures imported from tasks_fixtures)

from __future__ import annotations

import pytest
from sqlalchemy import text
from tasks_fixtures import (
    db_url,
    drive,
    make_findings,
    make_session,
    pg_template,
    pg_url,
    sqlite_url,
)

from audit_lib.tasks.auditlog import seal, verify
from audit_lib.tasks.service import get_user, tasks_from_findings


@pytest.fixture
def logged(make_session, rng):
    """A log of 11 user events, 5 task creations and a few actions (24 rows)."""
    with make_session() as s:
        res = tasks_from_findings(
            s, make_findings(5, rng, stations=("YZ-S1",)), get_user(s, "aud_yz")
        )
        s.commit()
    drive(make_session, res.task_ids[0], [("dispatch", "aud_yz", {}), ("accept", "han_s1", {})])
    drive(
        make_session,
        res.task_ids[1],
        [
            ("dispatch", "aud_yz", {}),
            ("appeal", "han_s1", {"comment": "误报 false alarm"}),
            ("grant_appeal", "city", {}),
        ],
    )
    drive(make_session, res.task_ids[2], [("cancel", "admin", {"comment": "测试 test"})])
    with make_session() as s:
        seal(s)
        result = verify(s)
        assert result.ok and result.checked == 11 + 5 + 6 and result.unsealed == 0, result
    return make_session


def _tamper(factory, *statements: str) -> None:
    with factory() as s:
        for sql in statements:
            s.execute(text(sql))
        s.commit()


def test_log_verify_detects_edited_row(logged) -> None:
    _tamper(logged, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 17")
    with logged() as s:
        result = verify(s)
    assert (result.ok, result.first_bad_seq) == (False, 17)
    assert "edited" in result.message()


def test_log_verify_detects_edited_detail_with_rehash(logged) -> None:
    # the forger recomputes the row's own hash: the next row's link still breaks
    with logged() as s:
        from audit_lib.tasks.auditlog import CONTENT, hash_row

        row = s.execute(text("SELECT * FROM audit_events WHERE seq = 20")).mappings().one()
        content = [row[c] for c in CONTENT[:-1]] + ['{"comment":"ok"}']
        forged = hash_row(row["prev_hash"], 20, *content)
        s.execute(
            text('UPDATE audit_events SET detail = \'{"comment":"ok"}\', hash = :h WHERE seq = 20'),
            {"h": forged},
        )
        s.commit()
        result = verify(s)
    assert (result.ok, result.first_bad_seq) == (False, 21)


def test_log_verify_detects_deleted_row(logged) -> None:
    _tamper(logged, "DELETE FROM audit_events WHERE seq = 12")
    with logged() as s:
        result = verify(s)
    assert (result.ok, result.first_bad_seq) == (False, 12)
    assert "missing" in result.problem


def test_log_verify_detects_deleted_last_row(logged) -> None:
    _tamper(logged, "DELETE FROM audit_events WHERE seq = 22")
    with logged() as s:
        result = verify(s)
    assert (result.ok, result.first_bad_seq) == (False, 22)


def test_log_verify_detects_reordered_rows(logged) -> None:
    _tamper(
        logged,
        "UPDATE audit_events SET seq = -1 WHERE seq = 18",
        "UPDATE audit_events SET seq = 18 WHERE seq = 19",
        "UPDATE audit_events SET seq = 19 WHERE seq = -1",
    )
    with logged() as s:
        result = verify(s)
    assert (result.ok, result.first_bad_seq) == (False, 18)


def test_log_verify_fresh_database_is_ok(make_session) -> None:
    with make_session() as s:
        assert verify(s).ok


def test_log_unsealed_events_are_sealed_in_insertion_order(make_session) -> None:
    # rows written while another transaction held the head lock stay unsealed until sealed
    with make_session() as s:
        seal(s)
        for action in ("x", "y"):
            s.execute(
                text(
                    "INSERT INTO audit_events (actor, at, action, detail) "
                    "VALUES ('a', '2026-01-01T00:00:00', :a, '{}')"
                ),
                {"a": action},
            )
        s.commit()
        assert verify(s).unsealed == 2
        assert seal(s) == 2 and seal(s) == 0
        result = verify(s)
        assert result.ok and result.unsealed == 0 and result.checked == 11 + 2
        actions = s.execute(text("SELECT action FROM audit_events ORDER BY seq")).scalars().all()
        assert actions[-2:] == ["x", "y"]
