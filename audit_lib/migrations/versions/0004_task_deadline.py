"""task time limit: deadline_at (限时稽查), set from the themes' deadline_days

Revision ID: 0004_task_deadline
Revises: 0003_audit_append
Create Date: 2026-12-07 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_task_deadline"
down_revision: str | None = "0003_audit_append"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("tasks", sa.Column("deadline_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    """Undo this revision."""
    op.drop_column("tasks", "deadline_at")
