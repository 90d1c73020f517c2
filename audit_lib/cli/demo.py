"""``audit demo-setup`` and ``audit demo-loop``: the task side of ``make demo``.

``demo-setup`` upgrades the database and adds the demo users of every bureau and station in
the mart; ``demo-loop`` gathers the findings of a monitoring run and moves some of its tasks
along the closed loop (dispatched, handled, reviewed, one appealed, one overdue). Both are
idempotent: a second call adds and moves nothing.
"""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from audit_lib.errors import NotFound


@click.command("demo-setup")
@click.option("--mart", "mart_dir", required=True, type=click.Path(file_okay=False))
@click.option(
    "--db", "db_url", default=None, help="database URL (default: AUDIT_DB_URL or var/audit.db)"
)
def demo_setup(mart_dir: str, db_url: str | None) -> None:
    """建库并添加演示用户 / Create the database and the demo users."""
    from audit_lib.data.access import Mart
    from audit_lib.db import create_engine, session_factory
    from audit_lib.demo.loop import add_demo_users
    from audit_lib.migrations import upgrade
    from audit_lib.tasks.service import commit_or_conflict, ensure_system_user

    upgrade(db_url)
    with Mart(mart_dir) as mart:
        stations = mart.stations()[["bureau", "station_id"]]
    engine = create_engine(db_url)
    try:
        with session_factory(engine)() as session:
            added = add_demo_users(session, stations)
            ensure_system_user(session)  # the actor of scheduled runs, as audit db upgrade
            commit_or_conflict(session)
    finally:
        engine.dispose()
    click.echo(f"demo users added: {added}")


@click.command("demo-loop")
@click.option("--outputs", default="outputs", type=click.Path(file_okay=False), show_default=True)
@click.option("--run", "run_id", default=None, help="run id (default: the latest monitoring run)")
@click.option(
    "--db", "db_url", default=None, help="database URL (default: AUDIT_DB_URL or var/audit.db)"
)
def demo_loop(outputs: str, run_id: str | None, db_url: str | None) -> None:
    """演示闭环流转 / Move some tasks of a monitoring run along the audit loop."""
    from sqlalchemy import func, select

    from audit_lib.db import create_engine, session_factory
    from audit_lib.demo.loop import run_demo
    from audit_lib.tasks.models import Task

    runs = sorted(p for p in Path(outputs).glob("*monitoring*") if p.is_dir())
    folder = Path(outputs) / run_id if run_id else (runs[-1] if runs else None)
    files = sorted(folder.glob("*/findings.parquet")) if folder else []
    if not files:
        raise NotFound(f"no findings.parquet under {folder or outputs}: run the monitoring first")
    findings = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    engine = create_engine(db_url)
    try:
        factory = session_factory(engine)
        with factory() as session:
            moved = session.execute(select(func.count()).where(Task.state != "new")).scalar_one()
        if moved:
            click.echo(f"demo loop already played ({moved} tasks past 'new'); nothing to do")
            return
        summary = run_demo(factory, findings)
    finally:
        engine.dispose()
    click.echo(f"tasks created: {summary.tasks_created}; moved: {dict(summary.moved)}")
