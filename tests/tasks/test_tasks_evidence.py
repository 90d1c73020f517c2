"""Evidence attachments (copied into the store, typed, in scope) and the migrations (linear,
matching the models)."""

# ruff: noqa: F401, F811  (pytest fixtures imported from tasks_fixtures)

from __future__ import annotations

import hashlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from tasks_fixtures import db_url, make_findings, make_session, pg_template, pg_url, sqlite_url

import audit_lib.tasks.models
from audit_lib.db import Base, create_engine
from audit_lib.errors import DataError, NotFound, PermissionDenied
from audit_lib.migrations import current_heads, upgrade
from audit_lib.tasks.attachments import MAX_BYTES, STORE_ENV, add_attachment, open_attachment
from audit_lib.tasks.queries import show_task
from audit_lib.tasks.service import act, get_user, tasks_from_findings


def _one_task(session, rng) -> int:
    """A new task of station YZ-S1 (han_s1's), raised by its bureau's auditor."""
    findings = make_findings(1, rng, stations=("YZ-S1",))
    return int(tasks_from_findings(session, findings, get_user(session, "aud_yz")).task_ids[0])


JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40  # a JPEG's start: enough for the type


def test_attachment_is_copied_into_the_store_and_read_in_scope(
    make_session, rng, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STORE_ENV, str(tmp_path / "store"))
    with make_session() as s:
        tid = _one_task(s, rng)
        s.commit()
        row = add_attachment(s, tid, "../现场 照片.JPG", JPEG, "han_s1")
        s.commit()
        assert row.sha256 == hashlib.sha256(JPEG).hexdigest() and row.size == len(JPEG)
        assert row.path == f"{tid}/{row.sha256}.jpg"  # the store's name, not the user's
        assert (tmp_path / "store" / row.path).read_bytes() == JPEG
        view = show_task(s, tid, "rev_yz")
        assert view["attachments"][0]["sha256"] == row.sha256
        assert view["history"][-1]["action"] == "attach"
        assert "现场_照片.JPG" in view["history"][-1]["detail"]
        path, kind = open_attachment(s, tid, row.sha256, "rev_yz")
        assert path.read_bytes() == JPEG and kind.mime == "image/jpeg" and kind.image
        with pytest.raises(PermissionDenied, match="out of scope"):
            open_attachment(s, tid, row.sha256, "aud_jb")
        with pytest.raises(NotFound, match="no attachment"):
            open_attachment(s, tid, "0" * 64, "rev_yz")


@pytest.mark.parametrize(
    ("name", "content", "actor", "error", "message"),
    [
        ("x.svg", b"<svg onload='alert(1)'/>", "han_s1", DataError, "file type .svg not taken"),
        ("x.html", b"<script>", "han_s1", DataError, "file type .html not taken"),
        ("x.png", b"<svg onload='alert(1)'/>", "han_s1", DataError, "not a .png file"),
        ("x.pdf", b"", "han_s1", DataError, "empty"),
        ("x.pdf", b"%PDF-" + b"0" * (MAX_BYTES + 1), "han_s1", DataError, "larger than"),
        ("x.jpg", JPEG, "han_jb", PermissionDenied, "out of scope"),
        ("x.jpg", JPEG, "rev_yz", PermissionDenied, "may not add evidence"),
    ],
)
def test_attachment_refused_with_a_reason(
    make_session,
    rng,
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,
    name,
    content,
    actor,
    error,
    message,
) -> None:
    monkeypatch.setenv(STORE_ENV, str(tmp_path / "store"))
    with make_session() as s:
        tid = _one_task(s, rng)
        s.commit()
        with pytest.raises(error, match=message):
            add_attachment(s, tid, name, content, actor)
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*.*"))


def test_no_evidence_is_added_to_a_closed_task(
    make_session, rng, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STORE_ENV, str(tmp_path / "store"))
    with make_session() as s:
        tid = _one_task(s, rng)
        act(s, tid, "cancel", "aud_yz", comment="duplicate")
        s.commit()
        with pytest.raises(PermissionDenied, match="no more evidence"):
            add_attachment(s, tid, "x.jpg", JPEG, "han_s1")


def test_migrations_are_linear_idempotent_and_match_models(db_url) -> None:
    assert len(current_heads()) == 1
    upgrade(db_url)  # already at head: nothing to do
    engine = create_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []
