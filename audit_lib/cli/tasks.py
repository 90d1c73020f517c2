"""``audit db|users|tasks|log``: the closed audit loop from the command line.

Every command opens the database from ``--db`` or ``AUDIT_DB_URL`` (default: a SQLite file
under ``var/``), acts as the user named by ``--as``, commits once, and reports problems as one
line (exit status 2) through :func:`audit_lib.cli.main`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import pandas as pd
from sqlalchemy.orm import Session

from audit_lib.db import create_engine, database_url, require_tables, session_factory
from audit_lib.errors import DataError, NotFound

db_option = click.option("--db", "db_url", default=None, help="database URL (else AUDIT_DB_URL)")
as_option = click.option("--as", "as_user", required=True, help="acting user name")


@contextmanager
def open_session(db_url: str | None) -> Iterator[Session]:
    """A session on the workbench database (refused in one line when it was never set up);
    the engine is disposed afterwards."""
    engine = create_engine(db_url)
    try:
        require_tables(engine, ("users", "tasks", "audit_events"))
        with session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


# --------------------------------------------------------------------------- db
@click.group("db")
def db() -> None:
    """数据库 / Database schema (Alembic migrations)."""


@db.command("upgrade")
@db_option
@click.option("--revision", default="head", show_default=True)
def db_upgrade(db_url: str | None, revision: str) -> None:
    """Create or upgrade the tables and add the ``system`` actor of scheduled runs
    (idempotent)."""
    from audit_lib.migrations import upgrade
    from audit_lib.tasks.service import SYSTEM_USER, ensure_system_user

    upgrade(db_url, revision)
    click.echo(f"database upgraded to {revision}: {database_url(db_url).split('@')[-1]}")
    if revision == "head":
        with open_session(db_url) as session:
            if ensure_system_user(session):
                session.commit()
                click.echo(f"added user {SYSTEM_USER} (city_auditor), the actor of scheduled runs")


# --------------------------------------------------------------------------- users
@click.group("users")
def users() -> None:
    """用户与角色 / Users, roles and scope."""


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, help="city_auditor, bureau_auditor, station_handler, …")
@click.option("--bureau", default=None, help="bureau code; omit for city-wide")
@click.option("--station", default=None, help="supply station id (station handlers)")
@click.option("--email", default=None)
@db_option
def users_add(
    name: str,
    role: str,
    bureau: str | None,
    station: str | None,
    email: str | None,
    db_url: str | None,
) -> None:
    """Add user NAME with a role and scope."""
    from audit_lib.tasks.service import add_user, commit_or_conflict

    with open_session(db_url) as session:
        user = add_user(session, name, role, bureau, station, email)
        commit_or_conflict(session)
        click.echo(f"user {user.name}: {user.role} {user.bureau or 'city'} {user.station_id or ''}")


# --------------------------------------------------------------------------- tasks
@click.group("tasks")
def tasks() -> None:
    """稽查任务 / Audit tasks: list, show, act, create from findings, overdue."""


@tasks.command("list")
@click.option("--bureau", default=None)
@click.option("--state", default=None)
@click.option("--overdue", is_flag=True, help="only tasks past their deadline")
@click.option("--limit", default=50, show_default=True)
@click.option("--offset", default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@as_option
@db_option
def tasks_list(
    bureau: str | None,
    state: str | None,
    overdue: bool,
    limit: int,
    offset: int,
    as_json: bool,
    as_user: str,
    db_url: str | None,
) -> None:
    """List tasks in the user's scope, highest priority first."""
    from audit_lib.tasks.queries import list_tasks

    with open_session(db_url) as session:
        page = list_tasks(
            session,
            as_user,
            bureau=bureau,
            state=state,
            overdue=overdue,
            limit=limit,
            offset=offset,
        )
    if as_json:
        _echo_json({"total": page.total, "offset": page.offset, "rows": page.rows})
        return
    click.echo(f"{page.total} tasks (showing {len(page.rows)} from {page.offset})")
    for r in page.rows:
        click.echo(
            f"{r['id']:>7} {r['state_zh']:<6} {r['bureau']:<5} {r['entity']:<14} "
            f"{r['period_start']}..{r['period_end']} p={r['priority']:.1f} "
            f"due {str(r['due_at'])[:16]} {r['title_zh']}"
        )


@tasks.command("show")
@click.argument("task_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@as_option
@db_option
def tasks_show(task_id: int, as_json: bool, as_user: str, db_url: str | None) -> None:
    """Show one task: fields, findings, outcome, history and allowed actions."""
    from audit_lib.tasks.queries import show_task

    with open_session(db_url) as session:
        view = show_task(session, task_id, as_user)
    if as_json:
        _echo_json(view)
        return
    click.echo(
        f"任务 Task {view['id']}  {view['state_zh']} / {view['state_en']}  v{view['version']}"
    )
    click.echo(f"  {view['title_zh']}\n  {view['title_en']}")
    click.echo(f"  {view['bureau']} / {view['station_id']}  {view['entity_kind']} {view['entity']}")
    click.echo(
        f"  priority {view['priority']:.1f}  due {view['due_at']}  "
        f"time limit {view['deadline_at']}  notebook {view['notebook']}"
    )
    click.echo(f"  outcome {view['outcome']}")
    for f in view["findings"]:
        click.echo(
            f"  finding {f['finding_id']} {f['theme_id']} score={f['score']:.3f} {f['reason_zh']}"
        )
    for e in view["history"]:
        click.echo(
            f"  #{e['seq']} {e['at'][:19]} {e['actor']} {e['action']} {e['before']}→{e['after']}"
        )
    click.echo(f"  allowed: {', '.join(view['allowed_actions']) or '-'}")


def parse_amounts(values: tuple[str, ...]) -> dict[str, float]:
    """``--amount 1200`` (back-billed money) or ``--amount penalty=3600`` → a mapping."""
    out: dict[str, float] = {}
    for text in values:
        key, _, number = text.rpartition("=")
        try:
            out[key or "backbilled_money"] = float(number)
        except ValueError:
            raise DataError(f"--amount {text!r}: expected NUMBER or NAME=NUMBER") from None
    return out


@tasks.command("act")
@click.argument("task_id", type=int)
@click.argument("action")
@click.option("--comment", default=None, help="comment; required to reject, send back, appeal")
@click.option("--outcome", default=None, help="confirmed_theft, violation, tariff_error, …")
@click.option("--amount", "amounts", multiple=True, help="N or backbilled_kwh|…|penalty=N")
@click.option("--expected-version", type=int, default=None, help="fail if the task changed")
@as_option
@db_option
def tasks_act(
    task_id: int,
    action: str,
    comment: str | None,
    outcome: str | None,
    amounts: tuple[str, ...],
    expected_version: int | None,
    as_user: str,
    db_url: str | None,
) -> None:
    """Perform ACTION on task TASK_ID (dispatch, accept, submit-result, approve, …)."""
    from audit_lib.tasks.service import act, commit_or_conflict

    with open_session(db_url) as session:
        task = act(
            session,
            task_id,
            action,
            as_user,
            comment,
            outcome,
            parse_amounts(amounts),
            expected_version=expected_version,
        )
        commit_or_conflict(session)
        click.echo(f"task {task.id}: {task.state} (v{task.version})")


@tasks.command("from-findings")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--deadlines", "deadlines_yaml", type=click.Path(path_type=Path), default=None)
@as_option
@db_option
def tasks_from_findings_cmd(
    path: Path, deadlines_yaml: Path | None, as_user: str, db_url: str | None
) -> None:
    """Create tasks from a findings Parquet file (idempotent)."""
    from audit_lib.tasks.deadlines import DeadlinePolicy
    from audit_lib.tasks.service import commit_or_conflict, get_user, tasks_from_findings

    if not path.exists():
        raise NotFound(f"findings file not found: {path}")
    try:
        findings = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a bad file
        raise DataError(f"cannot read Parquet: {exc}", file=str(path)) from None
    policy = DeadlinePolicy.from_yaml(deadlines_yaml) if deadlines_yaml else None
    with open_session(db_url) as session:
        user = get_user(session, as_user)
        result = tasks_from_findings(session, findings, user, policy, source=str(path))
        commit_or_conflict(session)
    click.echo(
        f"{result.tasks_created} tasks created, {result.findings_linked} findings linked, "
        f"{result.findings_skipped} already known"
    )


@tasks.command("overdue")
@click.option("--no-escalate", is_flag=True, help="only list, do not escalate")
@click.option("--json", "as_json", is_flag=True)
@as_option
@db_option
def tasks_overdue(no_escalate: bool, as_json: bool, as_user: str, db_url: str | None) -> None:
    """List overdue tasks and escalate each one level (station → bureau → city)."""
    from audit_lib.tasks.escalation import escalate_overdue, notify_near_deadline, overdue_tasks
    from audit_lib.tasks.queries import task_row
    from audit_lib.tasks.service import commit_or_conflict, get_user

    with open_session(db_url) as session:
        user = get_user(session, as_user)
        rows = [task_row(t) for t in overdue_tasks(session, user)]
        done = [] if no_escalate else escalate_overdue(session, user)
        reminded = 0 if no_escalate else notify_near_deadline(session)
        commit_or_conflict(session)
    if as_json:
        _echo_json({"overdue": rows, "escalated": [e.__dict__ for e in done]})
        return
    click.echo(f"{len(rows)} overdue, {len(done)} escalated, {reminded} near-deadline reminders")
    for r in rows:
        click.echo(f"{r['id']:>7} {r['state_zh']:<6} {r['bureau']:<5} due {str(r['due_at'])[:16]}")


@tasks.command("notify")
@db_option
def tasks_notify(db_url: str | None) -> None:
    """Send queued notifications by SMTP (AUDIT_SMTP_HOST); without it they stay queued."""
    from audit_lib.tasks.notify import SmtpChannel, deliver_pending
    from audit_lib.tasks.service import commit_or_conflict

    channel = SmtpChannel.from_env()
    if channel is None:
        click.echo("SMTP off (set AUDIT_SMTP_HOST): notifications stay in the outbox")
        return
    with open_session(db_url) as session:
        sent, failed = deliver_pending(session, channel)
        commit_or_conflict(session)
    click.echo(f"{sent} sent, {failed} failed (kept for retry)")


@tasks.command("attach")
@click.argument("task_id", type=int)
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@as_option
@db_option
def tasks_attach(task_id: int, file: Path, as_user: str, db_url: str | None) -> None:
    """Copy evidence FILE into the attachment store for task TASK_ID (its SHA-256 recorded)."""
    from audit_lib.tasks.attachments import MAX_BYTES, add_attachment
    from audit_lib.tasks.service import commit_or_conflict

    if not file.is_file():
        raise NotFound(f"附件不存在 file not found: {file}")
    if file.stat().st_size > MAX_BYTES:
        raise DataError(f"附件过大 the file is larger than {MAX_BYTES} bytes", file=str(file))
    with open_session(db_url) as session:
        row = add_attachment(session, task_id, file.name, file.read_bytes(), as_user)
        commit_or_conflict(session)
        click.echo(f"attached {file.name} to task {task_id}: sha256={row.sha256}")


@tasks.command("demo")
@click.argument("path", type=click.Path(path_type=Path))
@db_option
def tasks_demo(path: Path, db_url: str | None) -> None:
    """Demo: users, tasks from a findings Parquet file, some moved along the loop."""
    from audit_lib.demo.loop import run_demo
    from audit_lib.migrations import upgrade

    if not path.exists():
        raise NotFound(f"findings file not found: {path}")
    upgrade(db_url)
    engine = create_engine(db_url)
    try:
        summary = run_demo(session_factory(engine), pd.read_parquet(path))
    finally:
        engine.dispose()
    moved = ", ".join(f"{k} {v}" for k, v in sorted(summary.moved.items())) or "none"
    click.echo(
        f"demo: {summary.users_added} users, {summary.tasks_created} tasks created; moved: {moved}"
    )


# --------------------------------------------------------------------------- log
@click.group("log")
def log() -> None:
    """审计日志 / The tamper-evident audit log."""


@log.command("verify")
@db_option
def log_verify(db_url: str | None) -> int:
    """Check the hash chain; exit 1 and name the first bad row if it was tampered with."""
    from audit_lib.tasks.auditlog import seal, verify

    with open_session(db_url) as session:
        seal(session)
        result = verify(session)
    click.echo(result.message(), err=not result.ok)
    return 0 if result.ok else 1
