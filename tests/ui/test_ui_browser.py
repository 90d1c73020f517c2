"""End to end in Debian's Chromium: ``audit serve``, sign in, filter, open, approve; scope.

Starts ``audit serve`` on a free port over a fresh SQLite database and the tiny mart, drives
the apps with pytest-playwright, checks the database, and saves a screenshot of each app under
``docs/screenshots/``. The server is stopped at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Browser, BrowserContext, Page
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from ui_fixtures import (
    HEADLESS_CHROMIUM_ARGS,
    build_database,
    build_mart,
    stop_process,
    submitted_ids,
)

from audit_lib.tasks.models import AuditEvent, Task
from audit_lib.ui.server.serve import issue_tokens

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "docs" / "screenshots"
COLD_START_MS = 180_000  # a kernel starts per page; the shared machine is slow


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium with the launch arguments of STACK-NOTES.md."""
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not chromium:
        pytest.fail("Debian's chromium is not installed (make sysdeps)")
    return {**browser_type_launch_args, "executable_path": chromium, "args": HEADLESS_CHROMIUM_ARGS}


@dataclass
class Server:
    url: str
    tokens: dict[str, str]  # user → token
    factory: sessionmaker[Session]
    log: Path
    tokens_file: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"audit serve exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/voila/static/voila.js", timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(1)
    pytest.fail(f"audit serve not ready after {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("ui_browser")
    outputs = root / "outputs"
    db = f"sqlite:///{root}/audit.db"
    factory = build_database(db, np.random.default_rng(11), outputs=str(outputs))
    mart = build_mart(root / "mart")
    for bureau in ("YZ", "JB"):
        report = outputs / "run-1" / bureau / "monitor.html"
        report.parent.mkdir(parents=True)
        report.write_text(f"<html><body>monitor report {bureau}</body></html>")
    tokens = {name: token for token, name in issue_tokens(factory, root / "tokens.json").items()}
    port = _free_port()
    log = root / "serve.log"
    env = {**os.environ, "AUDIT_OUTPUTS": str(outputs), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "audit_lib.cli", "serve", "--port", str(port), "--db", db]
    cmd += ["--mart", str(mart), "--tokens", str(root / "tokens.json"), "--max-kernels", "8"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, log, timeout=180)
        yield Server(url, tokens, factory, log, root / "tokens.json")
    finally:
        stop_process(proc)


def _sign_in(browser: Browser, server: Server, user: str) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="zh-CN")
    outside: list[str] = []  # requests leaving loopback (an intranet has no route out)
    context.on("request", lambda r: outside.append(r.url) if _leaves_loopback(r.url) else None)
    context.outside = outside  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{server.url}/?token={server.tokens[user]}")
    return context, page


def _leaves_loopback(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname != "127.0.0.1"


def _open_app(page: Page, server: Server, app: str, css: str) -> None:
    page.goto(f"{server.url}/voila/render/{app}/{app}.ipynb", wait_until="commit")
    page.locator(f".{css}").wait_for(state="visible", timeout=COLD_START_MS)


def _no_stderr_on(page: Page) -> None:
    """No log line, warning or traceback of the kernel reached the page."""
    assert page.locator("[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
    content = page.content()
    assert "findfont" not in content and "Traceback" not in content


def _options(page: Page) -> list[str]:
    return [t.replace("\xa0", " ") for t in page.locator(".audit-inbox option").all_inner_texts()]


def test_browser_reviewer_filters_opens_and_approves(browser: Browser, server: Server) -> None:
    task_id = submitted_ids(server.factory, 1)[0]
    context, page = _sign_in(browser, server, "rev_yz")
    links = page.locator(".audit-app-link")
    assert links.count() == 2 and page.locator("#app-task_handling").count() == 0
    with page.expect_navigation(wait_until="commit"):
        page.click("#app-task_review")
    page.locator(".audit-review-app").wait_for(state="visible", timeout=COLD_START_MS)
    assert len(_options(page)) == 25
    page.locator(".audit-filter-state select").select_option(label="结果已提交")
    page.wait_for_function(
        "document.querySelectorAll('.audit-inbox option').length == 4", timeout=30_000
    )
    texts = _options(page)
    assert all(" YZ " in t and "结果已提交" in t for t in texts)
    index = next(i for i, t in enumerate(texts) if t.startswith(f"#{task_id} "))
    page.locator(".audit-inbox select").select_option(index=index)
    view = page.locator(".audit-task-view")
    view.get_by_text(f"#{task_id}").wait_for(timeout=30_000)
    page.locator(".audit-evidence-chart img").wait_for(state="visible", timeout=60_000)
    page.locator(".audit-action-start-review").click()
    page.locator(".audit-task-state", has_text="审核中").wait_for(timeout=30_000)
    page.locator(".audit-comment textarea").fill("证据充分，同意 evidence sufficient")
    page.locator(".audit-action-approve").click()
    page.locator(".audit-task-state", has_text="审核通过").wait_for(timeout=30_000)
    _no_stderr_on(page)
    assert context.outside == []  # type: ignore[attr-defined]
    page.screenshot(path=str(SHOTS / "task_review.png"), full_page=True)
    with server.factory() as session:
        task = session.get(Task, task_id)
        last = (
            session.execute(
                select(AuditEvent)
                .where(AuditEvent.task_id == task_id)
                .order_by(AuditEvent.id.desc())
            )
            .scalars()
            .first()
        )
    assert task is not None and task.state == "approved" and task.reviewed_by == "rev_yz"
    assert last is not None and (last.actor, last.action, last.after) == (
        "rev_yz",
        "approve",
        "approved",
    )
    assert json.loads(last.detail)["comment"] == "证据充分，同意 evidence sufficient"
    report = page.request.get(f"{server.url}/audit/evidence/{task_id}")
    assert report.status == 200 and "monitor report YZ" in report.text()
    context.close()


def test_browser_other_bureau_sees_nothing(browser: Browser, server: Server) -> None:
    task_id = submitted_ids(server.factory, 1)[0]
    with server.factory() as session:
        entity = session.get(Task, task_id).entity  # type: ignore[union-attr]
    context, page = _sign_in(browser, server, "rev_jb")
    _open_app(page, server, "task_review", "audit-review-app")
    page.wait_for_function(
        "document.querySelectorAll('.audit-inbox option').length == 8", timeout=30_000
    )
    texts = _options(page)
    assert all(" JB " in t for t in texts) and not any(" YZ " in t for t in texts)
    assert entity not in page.content()
    denied = page.request.get(f"{server.url}/audit/evidence/{task_id}")
    assert denied.status == 403 and "monitor report" not in denied.text()
    signed_in = page.request.get(f"{server.url}/", max_redirects=0)
    assert signed_in.status == 200 and "rev_jb" in signed_in.text()
    kept = {t: n for t, n in json.loads(server.tokens_file.read_text()).items() if n != "rev_jb"}
    server.tokens_file.write_text(json.dumps(kept))
    revoked = page.request.get(f"{server.url}/", max_redirects=0)
    assert revoked.status == 302 and "login" in revoked.headers["location"]
    context.close()
    context, page = _sign_in(browser, server, "han_s1")
    refused = page.request.get(f"{server.url}/voila/render/task_review/task_review.ipynb")
    assert refused.status == 403 and "Traceback" not in refused.text()
    context.close()


def test_browser_handling_and_dashboard_screenshots(browser: Browser, server: Server) -> None:
    context, page = _sign_in(browser, server, "han_s1")
    _open_app(page, server, "task_handling", "audit-handling-app")
    page.wait_for_function(
        "document.querySelectorAll('.audit-inbox option').length > 0", timeout=30_000
    )
    page.locator(".audit-inbox select").select_option(index=0)
    page.locator(".audit-task-state").wait_for(timeout=30_000)
    page.screenshot(path=str(SHOTS / "task_handling.png"), full_page=True)
    context.close()
    context, page = _sign_in(browser, server, "city")
    _open_app(page, server, "dashboard", "audit-dashboard-app")
    page.locator(".audit-dash-table").wait_for(timeout=60_000)
    assert page.locator(".audit-dash-table tbody tr").count() == 2
    page.locator(".audit-dash-drill select").select_option(label="YZ")
    page.locator(".audit-dash-st").wait_for(timeout=60_000)
    page.locator(".audit-dash-trend img").wait_for(timeout=60_000)
    _no_stderr_on(page)
    page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)
    context.close()
