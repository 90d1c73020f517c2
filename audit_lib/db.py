"""The relational database of the workbench (tasks, users, audit log, run records).

One declarative :class:`Base` with a naming convention (stable constraint names for Alembic),
an engine factory that reads ``AUDIT_DB_URL`` and tunes SQLite (WAL, busy timeout), and a
session factory. Sessions are always passed in, never global.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, event, inspect
from sqlalchemy import create_engine as _sa_create_engine
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from audit_lib.errors import ConfigError

DEFAULT_DB_PATH = Path("var") / "audit.db"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table of the workbench."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def database_url(url: str | None = None) -> str:
    """The database URL: the argument, else ``AUDIT_DB_URL``, else a SQLite file under ``var/``."""
    if url:
        return url
    env = os.environ.get("AUDIT_DB_URL")
    if env:
        return env
    return f"sqlite:///{DEFAULT_DB_PATH}"


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def create_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (see :func:`database_url`).

    SQLite files get WAL, ``synchronous=NORMAL``, a busy timeout and foreign keys; their
    parent folder is created. PostgreSQL URLs use psycopg 3 (``postgresql+psycopg://``).
    """
    resolved = make_url(database_url(url))
    if resolved.get_backend_name() == "sqlite":
        if resolved.database and resolved.database != ":memory:":
            Path(resolved.database).parent.mkdir(parents=True, exist_ok=True)
        engine = _sa_create_engine(resolved, **kwargs)
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    if resolved.drivername == "postgresql":
        resolved = resolved.set(drivername="postgresql+psycopg")
    kwargs.setdefault("pool_pre_ping", True)
    return _sa_create_engine(resolved, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory bound to ``engine`` (objects stay usable after commit)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def require_tables(engine: Engine, tables: tuple[str, ...]) -> None:
    """Raise :class:`ConfigError` in one line naming the database and the first of ``tables``
    it lacks: the database was never set up, or not upgraded since (``audit db upgrade``)."""
    present = set(inspect(engine).get_table_names())
    for table in tables:
        if table not in present:
            raise ConfigError(
                f"database {engine.url.render_as_string(hide_password=True)} has no table "
                f"{table}: run the database migrations first (audit db upgrade)"
            )
