"""Alembic migrations of the workbench database, shipped inside the package.

:func:`upgrade` runs them programmatically (``audit db upgrade``), so an installed package
needs no ``alembic.ini``. The URL comes from the argument, ``AUDIT_DB_URL`` or the default
SQLite file (see :func:`audit_lib.db.database_url`). Keep the revision chain linear.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from audit_lib.db import database_url

HERE = Path(__file__).resolve().parent


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at the migrations inside the package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", database_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def current_heads() -> tuple[str, ...]:
    """The head revision(s) of the migration scripts (one, while the chain is linear)."""
    from alembic.script import ScriptDirectory

    return tuple(ScriptDirectory.from_config(alembic_config()).get_heads())
