"""audit log: index of unsealed events; PostgreSQL function appending one event in a round trip

``audit_append(task_id, actor, at, action, before, after, detail)`` does on the server what
:func:`audit_lib.tasks.auditlog.append_events` does for one event: if the chain head can be
locked without waiting (``FOR UPDATE SKIP LOCKED``) it chains the unsealed rows (id order),
then the new row, and moves the head; otherwise it writes the row unsealed. The hash is the
same as :func:`audit_lib.tasks.auditlog.hash_row` (SHA-256 over prev hash, seq and content
joined by U+001F), so ``audit log verify`` checks rows from either path.

Revision ID: 0003_audit_append
Revises: 0002_runs
Create Date: 2026-11-27 08:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_audit_append"
down_revision: str | None = "0002_runs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUDIT_HASH = r"""
CREATE OR REPLACE FUNCTION audit_hash(
    prev text, seq integer, task_id integer, actor text, at text, action text,
    before text, after text, detail text
) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(
        coalesce(prev, '') || chr(31) || seq::text || chr(31)
        || coalesce(task_id::text, '') || chr(31) || coalesce(actor, '') || chr(31)
        || coalesce(at, '') || chr(31) || coalesce(action, '') || chr(31)
        || coalesce(before, '') || chr(31) || coalesce(after, '') || chr(31)
        || coalesce(detail, ''), 'UTF8')), 'hex')
$$
"""

AUDIT_APPEND = r"""
CREATE OR REPLACE FUNCTION audit_append(
    p_task_id integer, p_actor text, p_at text, p_action text,
    p_before text, p_after text, p_detail text
) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_seq integer;
    v_prev text;
    v_hash text;
    r record;
BEGIN
    SELECT last_seq, last_hash INTO v_seq, v_prev
        FROM audit_chain_head WHERE id = 1 FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        INSERT INTO audit_events (task_id, actor, at, action, before, after, detail)
            VALUES (p_task_id, p_actor, p_at, p_action, p_before, p_after, p_detail);
        RETURN false;
    END IF;
    FOR r IN SELECT id, task_id, actor, at, action, before, after, detail
               FROM audit_events WHERE seq IS NULL ORDER BY id LOOP
        v_seq := v_seq + 1;
        v_hash := audit_hash(v_prev, v_seq, r.task_id, r.actor, r.at, r.action,
                             r.before, r.after, r.detail);
        UPDATE audit_events SET seq = v_seq, prev_hash = v_prev, hash = v_hash WHERE id = r.id;
        v_prev := v_hash;
    END LOOP;
    v_seq := v_seq + 1;
    v_hash := audit_hash(v_prev, v_seq, p_task_id, p_actor, p_at, p_action,
                         p_before, p_after, p_detail);
    INSERT INTO audit_events (seq, task_id, actor, at, action, before, after, detail,
                              prev_hash, hash)
        VALUES (v_seq, p_task_id, p_actor, p_at, p_action, p_before, p_after, p_detail,
                v_prev, v_hash);
    UPDATE audit_chain_head SET last_seq = v_seq, last_hash = v_hash WHERE id = 1;
    RETURN true;
END
$$
"""


def upgrade() -> None:
    """Apply this revision."""
    op.create_index(
        "ix_audit_events_unsealed",
        "audit_events",
        ["id"],
        unique=False,
        postgresql_where=sa.text("seq IS NULL"),
        sqlite_where=sa.text("seq IS NULL"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(AUDIT_HASH)
        op.execute(AUDIT_APPEND)


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS audit_append(integer, text, text, text, text, text, text)"
        )
        op.execute(
            "DROP FUNCTION IF EXISTS audit_hash(text, integer, integer, text, text, text, "
            "text, text, text)"
        )
    op.drop_index("ix_audit_events_unsealed", table_name="audit_events")
