"""``audit run``, ``audit scheduler`` and ``audit schedule --once``."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

import click
import yaml

from audit_lib.errors import ConfigError

DEFAULT_CELL_TIMEOUT = 3600.0
"""A cell running longer than an hour is taken as hung (``--timeout 0`` lifts the limit)."""
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param {item!r}: expected KEY=VALUE")
        try:
            params[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--param {key}: value is not valid YAML: {exc}") from exc
    return params


@click.command("run")
@click.argument("notebook", required=False, type=click.Path(dir_okay=False))
@click.option("--bureau", "bureaus", help="all, or codes separated by commas: YZ,JB")
@click.option("--period", help="period passed to the notebook, e.g. 2025-01 or 2025-01..2025-12")
@click.option("--workers", type=int, default=2, show_default=True, help="parallel processes")
@click.option("--cluster", help="Dask distributed scheduler, tcp://HOST:PORT")
@click.option(
    "--timeout",
    type=float,
    default=DEFAULT_CELL_TIMEOUT,
    show_default=True,
    help="per-cell timeout in seconds (0: none)",
)
@click.option("--outputs", default="outputs", show_default=True, type=click.Path(file_okay=False))
@click.option("--parameters-dir", default="parameters", show_default=True)
@click.option("-p", "--param", "params", multiple=True, help="extra parameter KEY=VALUE (YAML)")
@click.option("--mart", type=click.Path(file_okay=False), help="data mart to fingerprint")
@click.option("--retry-failed", "retry_run_id", help="re-run only the failed bureaus of a run")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def run(
    notebook: str | None,
    bureaus: str | None,
    period: str | None,
    workers: int,
    cluster: str | None,
    timeout: float | None,
    outputs: str,
    parameters_dir: str,
    params: tuple[str, ...],
    mart: str | None,
    retry_run_id: str | None,
    no_progress: bool,
) -> int:
    """按供电局执行笔记本 / Run NOTEBOOK once per bureau with papermill.

    Writes outputs/<run_id>/<bureau>/ (executed notebook, HTML report, manifest.json, log.txt)
    and exits non-zero when any bureau failed.
    """
    from audit_lib.runs.runner import retry_failed, run_notebook

    if retry_run_id:
        if notebook or bureaus or period:
            raise click.UsageError("--retry-failed takes no NOTEBOOK, --bureau or --period")
        summary = retry_failed(
            retry_run_id,
            outputs=outputs,
            workers=workers,
            cluster=cluster,
            progress=not no_progress,
        )
    else:
        if not notebook or not bureaus or not period:
            raise click.UsageError("NOTEBOOK, --bureau and --period are required")
        summary = run_notebook(
            notebook,
            bureaus,
            period,
            workers,
            cluster,
            parameters_dir=parameters_dir,
            outputs=outputs,
            parameters=_parse_params(params),
            timeout=timeout or None,
            mart=mart,
            progress=not no_progress,
        )
    click.echo(summary.format())
    return summary.exit_code


def _setup_logging(log_file: str | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, handlers=handlers, force=True)
    for noisy in ("papermill", "traitlets", "distributed"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


_schedule_options = [
    click.option(
        "--schedule",
        "schedule_path",
        default="parameters/schedule.yml",
        show_default=True,
        type=click.Path(dir_okay=False),
    ),
    click.option("--db", "db_url", help="database URL (default: AUDIT_DB_URL or var/audit.db)"),
    click.option(
        "--outputs", default="outputs", show_default=True, type=click.Path(file_okay=False)
    ),
    click.option("--parameters-dir", default="parameters", show_default=True),
    click.option("--log-file", help="also append the log to this file"),
]


def _with_schedule_options(func: Any) -> Any:
    for option in reversed(_schedule_options):
        func = option(func)
    return func


@click.command("scheduler")
@_with_schedule_options
@click.option(
    "--poll",
    type=float,
    default=30.0,
    show_default=True,
    help="longest sleep between checks, seconds",
)
def scheduler(
    schedule_path: str,
    db_url: str | None,
    outputs: str,
    parameters_dir: str,
    log_file: str | None,
    poll: float,
) -> int:
    """调度进程 / Run schedule.yml until stopped (SIGINT/SIGTERM); no Jupyter server needed."""
    from audit_lib.db import create_engine
    from audit_lib.runs.scheduler import run_scheduler

    _setup_logging(log_file)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    engine = create_engine(db_url)
    try:
        run_scheduler(
            engine,
            schedule_path,
            outputs=outputs,
            parameters_dir=parameters_dir,
            stop=stop,
            poll_seconds=poll,
        )
    finally:
        engine.dispose()
    return 0


@click.command("schedule")
@_with_schedule_options
@click.option("--once", is_flag=True, required=True, help="run the due slots once and exit")
def schedule(
    schedule_path: str,
    db_url: str | None,
    outputs: str,
    parameters_dir: str,
    log_file: str | None,
    once: bool,
) -> int:
    """执行一次到期调度 / Run the due, unclaimed slots once (for cron) and exit."""
    from audit_lib.db import create_engine
    from audit_lib.runs.scheduler import schedule_once

    _setup_logging(log_file)
    engine = create_engine(db_url)
    try:
        outcomes = schedule_once(
            engine, schedule_path, outputs=outputs, parameters_dir=parameters_dir
        )
    finally:
        engine.dispose()
    for o in outcomes:
        click.echo(f"{o.entry} {o.slot_at.isoformat()} {o.status} {o.run_id or ''}")
    if not outcomes:
        click.echo("no slot due")
    return 1 if any(o.status == "failed" for o in outcomes) else 0
