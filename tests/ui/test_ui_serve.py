"""``audit serve`` pieces that need no running server: command line, tokens, CLI errors."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from ui_fixtures import build_database

from audit_lib.cli import cli
from audit_lib.ui.server.identity import load_token_map
from audit_lib.ui.server.serve import absolute_db_url, issue_tokens, voila_argv


def test_serve_command_line_binds_loopback_and_culls() -> None:
    argv = voila_argv(9999, Path("voila_apps"), cull_idle_timeout=300, cull_interval=30)
    assert argv[0] == "voila_apps" and "--port=9999" in argv
    assert "--Voila.ip=127.0.0.1" in argv
    assert "--MappingKernelManager.cull_idle_timeout=300" in argv
    assert "--MappingKernelManager.cull_interval=30" in argv
    assert "--VoilaConfiguration.show_tracebacks=False" in argv
    assert not any("preheat" in a for a in argv)  # incompatible with the prelaunch hook
    # kernels are owned (403 to other users) and come from a pool of warmed kernels
    assert "--Voila.authorizer_class=audit_lib.ui.server.kernels.KernelOwnerAuthorizer" in argv
    manager = "--VoilaConfiguration.multi_kernel_manager_class=audit_lib.ui.server.kernels."
    assert manager + "AuditKernelManager" in argv
    assert "--AuditKernelManager.pool_size=1" in argv
    assert "--AuditKernelManager.pool_size=0" in voila_argv(9999, pool_size=0)


def test_serve_issues_one_private_token_per_user(tmp_path: Path) -> None:
    factory = build_database(f"sqlite:///{tmp_path}/a.db", np.random.default_rng(1), submitted=0)
    path = tmp_path / "tokens.json"
    tokens = issue_tokens(factory, path)
    assert sorted(tokens.values()) == sorted(load_token_map(path).values())
    assert "rev_yz" in tokens.values() and len(set(tokens)) == len(tokens)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--apps", "no-such-dir"], "app notebooks not found"),
        (["--tokens", "missing.json"], "--issue-tokens"),
        (["--mart", "no-mart"], "mart folder not found"),
    ],
)
def test_serve_cli_errors_are_one_line(
    args: list[str], message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    repo = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(repo)
    db = f"sqlite:///{tmp_path}/a.db"
    tokens = [] if "--tokens" in args else ["--tokens", str(tmp_path / "none.json")]
    result = CliRunner().invoke(cli, ["serve", "--db", db, *tokens, *args])
    assert result.exit_code != 0
    assert message in str(result.exception)


def test_serve_gives_kernels_an_absolute_sqlite_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # kernels run in their app's folder: a relative SQLite file would be a new, empty database
    monkeypatch.chdir(tmp_path)
    assert absolute_db_url("sqlite:///var/audit.db") == f"sqlite:///{tmp_path}/var/audit.db"
    assert absolute_db_url(f"sqlite:///{tmp_path}/a.db") == f"sqlite:///{tmp_path}/a.db"
    pg = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    assert absolute_db_url(pg) == pg
