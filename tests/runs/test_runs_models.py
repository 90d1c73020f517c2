"""The run tables: the Alembic revision creates exactly what the models declare."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from audit_lib.db import Base, create_engine
from audit_lib.migrations import current_heads, upgrade
from audit_lib.runs.models import RUN_TABLES
from audit_lib.runs.scheduler import check_tables

OURS = {t.name for t in RUN_TABLES}


def test_migrations_create_run_tables_matching_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'migrated.db'}"
    upgrade(url)
    engine = create_engine(url)
    check_tables(engine)  # raises if a run table is missing
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        uniques = sa.inspect(conn).get_unique_constraints("schedule_slots")
    engine.dispose()

    def table_of(diff: object) -> str | None:
        item = diff[0] if isinstance(diff, list) else diff
        for part in item if isinstance(item, tuple) else ():
            name = getattr(part, "name", None) if not isinstance(part, str) else None
            table = getattr(part, "table", None)
            if table is not None and getattr(table, "name", None) in OURS:
                return str(table.name)
            if name in OURS:
                return str(name)
            if isinstance(part, str) and part in OURS:
                return part
        return None

    assert [d for d in diffs if table_of(d)] == []
    assert [u["column_names"] for u in uniques] == [["entry", "slot_at"]]


def test_run_revision_is_the_only_head() -> None:
    assert len(current_heads()) == 1
