"""Evidence attachments (path + SHA-256) and the migrations (linear, matching the models)."""

# ruff: noqa: F401, F811  (pytest fixtures imported from tasks_fixtures)

from __future__ import annotations

import hashlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from tasks_fixtures import db_url, make_findings, make_session, pg_template, pg_url, sqlite_url

import audit_lib.tasks.models
from audit_lib.db import Base, create_engine
from audit_lib.errors import NotFound, PermissionDenied
from audit_lib.migrations import current_heads, upgrade
from audit_lib.tasks.queries import show_task
from audit_lib.tasks.service import add_attachment, get_user, tasks_from_findings


def test_attachment_records_path_and_sha256(make_session, rng, tmp_path) -> None:
    photo = tmp_path / "meter-seal.jpg"
    photo.write_bytes(rng.bytes(300_000))
    with make_session() as s:
        tid = tasks_from_findings(
            s, make_findings(1, rng, stations=("YZ-S1",)), get_user(s, "aud_yz")
        ).task_ids[0]
        s.commit()
        row = add_attachment(s, tid, photo, "han_s1")
        s.commit()
        assert row.sha256 == hashlib.sha256(photo.read_bytes()).hexdigest()
        assert row.size == 300_000
        view = show_task(s, tid, "rev_yz")
        assert view["attachments"][0]["sha256"] == row.sha256
        assert view["history"][-1]["action"] == "attach"
        with pytest.raises(NotFound, match="not found"):
            add_attachment(s, tid, tmp_path / "missing.pdf", "han_s1")
        with pytest.raises(PermissionDenied, match="out of scope"):
            add_attachment(s, tid, photo, "han_jb")


def test_migrations_are_linear_idempotent_and_match_models(db_url) -> None:
    assert len(current_heads()) == 1
    upgrade(db_url)  # already at head: nothing to do
    engine = create_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []
