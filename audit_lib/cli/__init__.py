"""The ``audit`` command line.

Sub-commands live in small modules next to this one and are imported only when used, so
``audit --help`` stays fast. To add one, write a ``click.Command`` in a module here and
register it in :data:`COMMANDS` as ``"name": "module:attribute"``.

Every :class:`audit_lib.errors.AuditError` is printed as one line on stderr and exits with
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from audit_lib.errors import AuditError

COMMANDS: dict[str, str] = {
    "demo-data": "audit_lib.cli.data:demo_data",
    "mart": "audit_lib.cli.data:mart",
    "db": "audit_lib.cli.tasks:db",
    "users": "audit_lib.cli.tasks:users",
    "tasks": "audit_lib.cli.tasks:tasks",
    "log": "audit_lib.cli.tasks:log",
    "ingest": "audit_lib.cli.ingest:ingest",
    "load-sgcc": "audit_lib.cli.ingest:load_sgcc",
    "dq": "audit_lib.cli.ingest:dq",
    "run": "audit_lib.cli.runs:run",
    "scheduler": "audit_lib.cli.runs:scheduler",
    "schedule": "audit_lib.cli.runs:schedule",
    "detect": "audit_lib.cli.themes:detect_command",
    "demo-setup": "audit_lib.cli.demo:demo_setup",
    "demo-loop": "audit_lib.cli.demo:demo_loop",
    "evaluate-detection": "audit_lib.cli.themes:evaluate_command",
    "score": "audit_lib.cli.detect:score",
    "serve": "audit_lib.cli.serve:serve",
}


class LazyGroup(click.Group):
    """A group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module, attr = COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(module), attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup)
@click.version_option(package_name="audit_lib")
def cli() -> None:
    """营销稽查监控工作台 / Marketing audit & monitoring workbench."""


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``audit`` console script."""
    try:
        rv = cli.main(args=argv, prog_name="audit", standalone_mode=False)
    except AuditError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    if isinstance(rv, int) and rv:
        sys.exit(rv)
    return rv


if __name__ == "__main__":
    main()
