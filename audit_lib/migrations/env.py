"""Alembic environment: the workbench's metadata, the URL from the config (no ini file)."""

from __future__ import annotations

from alembic import context

import audit_lib.runs.models  # registers the run and schedule-slot tables
import audit_lib.tasks.models  # noqa: F401  (registers the task tables on Base.metadata)
from audit_lib.db import Base, create_engine

config = context.config
target_metadata = Base.metadata


def run_offline() -> None:
    """Emit SQL without a database connection (``--sql``)."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run the migrations over a live connection."""
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection, target_metadata=target_metadata, render_as_batch=True
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
