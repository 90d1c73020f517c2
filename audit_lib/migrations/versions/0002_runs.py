"""run tables: run records and schedule slots (the scheduler's lock)

Revision ID: 0002_runs
Revises: 0001_tasks
Create Date: 2026-11-27 05:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_runs"
down_revision: str | None = "0001_tasks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "run_records",
        sa.Column("run_id", sa.String(length=120), nullable=False),
        sa.Column("notebook", sa.String(length=255), nullable=False),
        sa.Column("period", sa.String(length=40), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("n_bureaus", sa.Integer(), nullable=False),
        sa.Column("n_ok", sa.Integer(), nullable=False),
        sa.Column("n_failed", sa.Integer(), nullable=False),
        sa.Column("output_dir", sa.String(length=500), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_run_records")),
    )
    op.create_table(
        "schedule_slots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("entry", sa.String(length=80), nullable=False),
        sa.Column("slot_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("run_id", sa.String(length=120), nullable=True),
        sa.Column("claimed_by", sa.String(length=120), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_slots")),
        sa.UniqueConstraint("entry", "slot_at", name=op.f("uq_schedule_slots_entry_slot_at")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("schedule_slots")
    op.drop_table("run_records")
