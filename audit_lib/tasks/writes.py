"""The writes of one task action, in as few round trips as the database allows.

:func:`write_action` applies what :func:`audit_lib.tasks.service.act` decided: the
optimistic-lock ``UPDATE tasks … WHERE id = :id AND version = :v RETURNING``, the
deadline-history row, the outcome upsert (if any) and the audit event. On PostgreSQL all of
it is one statement (data-modifying CTEs, the event through the ``audit_append`` function of
migration 0003, called only if the update matched); elsewhere (SQLite, in-process) they are
separate statements in the same transaction. Statements are built once and cached; no ORM
instance is built (that cost more client CPU than the database spent on the whole action),
and the caller gets an :class:`ActedTask`, the few columns a confirmation or a notice needs.

:func:`first_row` runs the action's read and its write: with psycopg, straight on the
driver's cursor in the session's transaction (SQL compiled once, prepared on the server),
which halves the client's CPU per action against a full SQLAlchemy execution; elsewhere as a
Core statement on the session's connection.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
from collections.abc import Mapping
from typing import Any, NamedTuple

import psycopg
from sqlalchemy import Dialect, Table, bindparam, column, insert, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select
from sqlalchemy.sql.selectable import TextualSelect

from audit_lib.tasks.auditlog import EventIn, append_events, event_row
from audit_lib.tasks.bulk import table_of
from audit_lib.tasks.models import Outcome, Task, TaskDeadline

AMOUNT_FIELDS = ("backbilled_kwh", "backbilled_money", "penalty")


class ActedTask(NamedTuple):
    """A task as stored right after an action: what a confirmation or a notice shows."""

    id: int
    version: int
    state: str
    bureau: str
    station_id: str | None
    title_zh: str
    title_en: str
    due_at: dt.datetime | None
    priority: float


ACTED_COLUMNS = ActedTask._fields


@functools.cache
def _driver_sql(
    stmt: Select[Any] | TextualSelect, dialect: Dialect
) -> tuple[str, dict[str, Any], Any]:
    """``stmt`` compiled for the driver once, its literal binds, a named tuple of its columns."""
    compiled = stmt.compile(dialect=dialect)
    names = list(stmt.selected_columns.keys())
    return str(compiled), dict(compiled.params), collections.namedtuple("Row", names)


def first_row(
    session: Session, stmt: Select[Any] | TextualSelect, params: Mapping[str, Any]
) -> Any | None:
    """The first row of ``stmt`` (attributes named as its columns), or None.

    Runs in the session's transaction. With psycopg the compiled SQL goes straight to the
    driver's cursor, prepared on the server; a driver error is raised as SQLAlchemy's
    exception of the same kind (:class:`sqlalchemy.exc.OperationalError`,
    :class:`sqlalchemy.exc.IntegrityError`, …), as a Core execution would. Meant for
    statements whose parameters and columns need no SQLAlchemy type processing (numbers,
    text, booleans, timestamps: psycopg adapts those itself).
    """
    conn = session.connection()
    if conn.dialect.driver != "psycopg":
        return conn.execute(stmt, params).first()
    sql, literals, row_type = _driver_sql(stmt, conn.dialect)
    raw: Any = conn.connection.driver_connection
    try:
        with raw.cursor() as cur:
            cur.execute(sql, {**literals, **params}, prepare=True)
            found = cur.fetchone()
    except psycopg.Error as exc:
        raise DBAPIError.instance(sql, dict(params), exc, psycopg.Error) from exc
    return None if found is None else row_type._make(found)


@functools.cache
def _deadline_insert() -> Any:
    return insert(table_of(TaskDeadline))


@functools.cache
def _update_statement(keys: frozenset[str]) -> Any:
    tasks = table_of(Task)
    return (
        update(tasks)
        .where(tasks.c.id == bindparam("_id"), tasks.c.version == bindparam("_version"))
        .values({k: bindparam(k) for k in sorted(keys)})
        .returning(*(tasks.c[name] for name in ACTED_COLUMNS))
    )


@functools.cache
def _upsert_statement(dialect: str, amounts: frozenset[str]) -> Any:
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table_of(Outcome))
    fresh = {k: stmt.excluded[k] for k in ("kind", "recorded_by", "recorded_at", *sorted(amounts))}
    return stmt.on_conflict_do_update(index_elements=["task_id"], set_=fresh)


def _pg_type(table: Table, name: str) -> str:
    return str(table.c[name].type.compile(dialect=postgresql.dialect()))


@functools.cache
def _pg_statement(keys: frozenset[str], amounts: frozenset[str] | None) -> Any:
    """One PostgreSQL statement: update, deadline history, outcome upsert, audit event."""
    hist, outc = table_of(TaskDeadline), table_of(Outcome)
    sets = ", ".join(f"{k} = :{k}" for k in sorted(keys))
    h_cols = [c.name for c in hist.c if c.name != "id"]
    h_vals = ", ".join(f"CAST(:h_{c} AS {_pg_type(hist, c)})" for c in h_cols)
    parts = [
        f"upd AS (UPDATE tasks SET {sets} WHERE id = :_id AND version = :_version "
        f"RETURNING {', '.join(ACTED_COLUMNS)})",
        f"hist AS (INSERT INTO task_deadlines ({', '.join(h_cols)}) SELECT {h_vals} FROM upd)",
    ]
    if amounts is not None:
        o_cols = ["task_id", "kind", "recorded_by", "recorded_at", *AMOUNT_FIELDS]
        o_vals = ", ".join(f"CAST(:o_{c} AS {_pg_type(outc, c)})" for c in o_cols)
        o_set = ", ".join(
            f"{c} = excluded.{c}" for c in ("kind", "recorded_by", "recorded_at", *sorted(amounts))
        )
        parts.append(
            f"outc AS (INSERT INTO outcomes ({', '.join(o_cols)}) SELECT {o_vals} FROM upd "
            f"ON CONFLICT (task_id) DO UPDATE SET {o_set})"
        )
    event = (
        "audit_append(CAST(:e_task_id AS integer), :e_actor, :e_at, :e_action, "
        "CAST(:e_before AS text), CAST(:e_after AS text), :e_detail)"
    )
    returned = ", ".join(f"upd.{name}" for name in ACTED_COLUMNS)
    sql = f"WITH {', '.join(parts)} SELECT {returned}, {event} AS sealed FROM upd"
    return text(sql).columns(*(column(name) for name in (*ACTED_COLUMNS, "sealed")))


def write_action(
    session: Session,
    task_id: int,
    version: int,
    changes: dict[str, Any],
    history: dict[str, Any],
    outcome: dict[str, Any] | None,
    amounts: frozenset[str],
    event: EventIn,
) -> ActedTask | None:
    """Apply an action's writes; the task as stored after them, or None if ``version`` moved.

    ``outcome`` is the full outcome row to insert (None: no outcome change); on conflict only
    its kind, recorder, time and the ``amounts`` given are updated. Nothing is written (no
    history, outcome or event) when the version does not match.
    """
    conn = session.connection()
    params = changes | {"_id": task_id, "_version": version}
    if conn.dialect.name == "postgresql":
        stmt = _pg_statement(frozenset(changes), None if outcome is None else amounts)
        params |= {f"h_{k}": v for k, v in history.items()}
        params |= {f"e_{k}": v for k, v in event_row(event).items()}
        if outcome is not None:
            params |= {f"o_{k}": v for k, v in outcome.items()}
        found = first_row(session, stmt, params)
        return None if found is None else ActedTask(*found[: len(ACTED_COLUMNS)])
    updated = conn.execute(_update_statement(frozenset(changes)), params).first()
    if updated is None:
        return None
    conn.execute(_deadline_insert(), history)
    if outcome is not None:
        conn.execute(_upsert_statement(conn.dialect.name, amounts), outcome)
    append_events(session, [event])
    return ActedTask(*updated)
