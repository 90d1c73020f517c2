"""``audit serve``: the Voila apps (review, handling, dashboard) on 127.0.0.1.

Users sign in with a personal token (see :mod:`audit_lib.ui.server.identity`); ``--issue-tokens``
writes one for every active user of the database and prints their sign-in links.
"""

from __future__ import annotations

from pathlib import Path

import click

from audit_lib.db import database_url
from audit_lib.errors import ConfigError

DEFAULT_TOKENS = Path("var") / "ui_tokens.json"


@click.command("serve")
@click.option("--port", default=8866, show_default=True, type=int, help="port on 127.0.0.1")
@click.option("--db", "db_url", default=None, help="database URL (else AUDIT_DB_URL)")
@click.option("--mart", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="mart folder for the evidence charts and the dashboard")  # fmt: skip
@click.option("--tokens", type=click.Path(dir_okay=False, path_type=Path),
              default=DEFAULT_TOKENS, show_default=True, help="JSON file: token → user")  # fmt: skip
@click.option("--issue-tokens", is_flag=True, help="write a new token for every active user")
@click.option("--apps", type=click.Path(file_okay=False, path_type=Path),
              default=Path("voila_apps"), show_default=True, help="folder of the app notebooks")  # fmt: skip
@click.option("--max-kernels", default=20, show_default=True, type=int, help="kernel cap")
@click.option("--max-kernels-per-user", default=3, show_default=True, type=int,
              help="open apps one user may hold at once")  # fmt: skip
@click.option("--cull-idle", default=600, show_default=True, type=int,
              help="seconds before an idle app's kernel is shut down")  # fmt: skip
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
def serve(
    port: int,
    db_url: str | None,
    mart: Path | None,
    tokens: Path,
    issue_tokens: bool,
    apps: Path,
    max_kernels: int,
    max_kernels_per_user: int,
    cull_idle: int,
    lang: str,
) -> None:
    """Serve the Voila apps with a landing page (启动审核/处理/运营展示应用)."""
    from audit_lib.db import create_engine, session_factory
    from audit_lib.ui.registry import APPS
    from audit_lib.ui.server.serve import issue_tokens as write_tokens
    from audit_lib.ui.server.serve import serve as run_server
    from audit_lib.ui.server.serve import voila_argv

    if not all((apps / name / f"{name}.ipynb").is_file() for name in APPS):
        raise ConfigError(f"app notebooks not found under {apps} (run from the repository root)")
    if mart is not None and not mart.is_dir():
        raise ConfigError(f"mart folder not found: {mart}")
    url = database_url(db_url)
    if issue_tokens:
        issued = write_tokens(session_factory(create_engine(url)), tokens)
        for token, name in issued.items():
            click.echo(f"{name}: http://127.0.0.1:{port}/?token={token}")
    elif not tokens.is_file():
        raise ConfigError(f"token file {tokens} not found: run audit serve --issue-tokens once")
    env = {
        "AUDIT_DB_URL": url,
        "AUDIT_UI_TOKENS": str(tokens.resolve()),
        "AUDIT_UI_MAX_KERNELS": str(max_kernels),
        "AUDIT_UI_MAX_KERNELS_PER_USER": str(max_kernels_per_user),
        "AUDIT_UI_LANG": lang,
    }
    if mart is not None:
        env["AUDIT_MART"] = str(mart.resolve())
    click.echo(f"serving the apps on http://127.0.0.1:{port}/ (Ctrl-C stops)")
    run_server(voila_argv(port, apps, cull_idle_timeout=cull_idle), env)
