"""Kernel ownership and the kernel pool, against a real ``audit serve`` on 127.0.0.1.

A page opened by ``rev_yz`` starts (or takes from the pool) a kernel owned by ``rev_yz``;
another signed-in user (``rev_jb``) gets 403 from every route that takes that kernel id: the
kernel model, the kernel websocket and the page-leave shutdown. The owner gets through.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect
from ui_fixtures import build_database, stop_process

from audit_lib.ui.server.serve import issue_tokens

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
APP = "/voila/render/task_review/task_review.ipynb"
START_TIMEOUT = 180.0


@dataclass
class Server:
    url: str
    tokens: dict[str, str]  # user → token
    log: Path
    db: str = ""
    store: Path = Path()

    def text_of_log(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(predicate: object, what: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.5)
    pytest.fail(f"{what} not seen after {timeout} s:\n{log.read_text()[-3000:]}")


def _reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/voila/static/voila.js", timeout=5) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("ui_kernels")
    db = f"sqlite:///{root}/audit.db"
    factory = build_database(db, np.random.default_rng(5), submitted=0)
    tokens = {name: token for token, name in issue_tokens(factory, root / "tokens.json").items()}
    port = _free_port()
    log = root / "serve.log"
    cmd = [sys.executable, "-m", "audit_lib.cli", "serve", "--port", str(port), "--db", db]
    cmd += ["--tokens", str(root / "tokens.json"), "--max-kernels", "8"]
    cmd += ["--max-kernels-per-user", "2"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "AUDIT_ATTACHMENTS": str(root / "store")}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: proc.poll() is not None or _reachable(url), "server", log, START_TIMEOUT)
        if proc.poll() is not None:
            pytest.fail(f"audit serve exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        yield Server(url, tokens, log, db, root / "store")
    finally:
        stop_process(proc)


def _request(
    server: Server, user: str, path: str, method: str = "GET"
) -> tuple[int, str, list[str]]:
    """Status, body and Set-Cookie headers of a request signed with ``user``'s token."""
    req = urllib.request.Request(
        server.url + path,
        method=method,
        data=b"" if method == "POST" else None,
        headers={"Authorization": f"token {server.tokens[user]}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            return r.status, r.read().decode("utf-8"), r.headers.get_all("Set-Cookie") or []
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace"), []


def _open_page(server: Server, user: str) -> tuple[str, list[str]]:
    """Render the review app as ``user``; return its kernel id and the cookies set."""
    status, body, cookies = _request(server, user, APP)
    assert status == 200, body[-2000:]
    config = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                       body, re.S)  # fmt: skip
    assert config is not None, body[-2000:]
    kernel_id = json.loads(config.group(1))["kernelId"]
    assert re.fullmatch(r"[0-9a-f-]{36}", kernel_id)
    return str(kernel_id), cookies


def _websocket_status(server: Server, user: str, kernel_id: str) -> int:
    """101 if ``user`` may open the kernel's websocket, else the HTTP status refused."""
    ws_url = server.url.replace("http", "ws", 1) + f"/api/kernels/{kernel_id}/channels"
    headers = {"Authorization": f"token {server.tokens[user]}"}
    request = HTTPRequest(ws_url, headers=headers, connect_timeout=60, request_timeout=120)

    async def connect() -> int:
        try:
            conn = await websocket_connect(request)
        except HTTPClientError as exc:
            return int(exc.code)
        conn.close()
        return 101

    # in a thread of its own: the browser tests' Playwright keeps an event loop in this one
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, connect()).result()


def test_kernel_routes_answer_only_the_owner(server: Server) -> None:
    kernel_id, cookies = _open_page(server, "rev_yz")
    assert any(c.startswith("_xsrf=") for c in cookies)  # Voila's page-leave shutdown needs it
    model = f"/api/kernels/{kernel_id}"
    assert _request(server, "rev_jb", model)[0] == 403
    status, body, _ = _request(server, "rev_yz", model)
    assert status == 200 and json.loads(body)["id"] == kernel_id
    assert _websocket_status(server, "rev_jb", kernel_id) == 403
    assert _websocket_status(server, "rev_yz", kernel_id) == 101
    shutdown = f"/voila/api/shutdown/{kernel_id}"
    assert _request(server, "rev_jb", shutdown, "POST")[0] == 403
    assert _request(server, "rev_yz", model)[0] == 200  # still running
    assert _request(server, "rev_yz", shutdown, "POST")[0] == 204
    assert _request(server, "rev_yz", model)[0] == 403  # gone: nobody's any more
    assert _request(server, "rev_yz", "/api/kernels/00000000-0000-0000-0000-000000000000")[0] == 403


def _pooled(server: Server) -> int:
    """Warmed review kernels waiting in the pool, according to the server log."""
    log = server.text_of_log()
    return log.count("ready in the pool of task_review") - log.count(
        "taken from the pool of task_review"
    )


def test_pages_take_warmed_kernels_from_the_pool(server: Server) -> None:
    _wait_for(lambda: _pooled(server) > 0, "a warmed review kernel", server.log, START_TIMEOUT)
    kernel_id, _ = _open_page(server, "rev_jb")
    log = server.text_of_log()
    assert f"Kernel {kernel_id} taken from the pool of task_review" in log
    assert f"Kernel {kernel_id} for rev_jb (task_review)" in log
    assert _request(server, "rev_yz", f"/api/kernels/{kernel_id}")[0] == 403
    assert _request(server, "rev_jb", f"/api/kernels/{kernel_id}")[0] == 200
    # and the pool is refilled for the next page
    _wait_for(lambda: _pooled(server) > 0, "a refilled pool", server.log, START_TIMEOUT)


def test_one_user_cannot_take_every_kernel(server: Server) -> None:
    opened = [_open_page(server, "city")[0] for _ in range(2)]  # the cap of this server: 2
    status, body, _ = _request(server, "city", APP)
    assert status == 503 and "close one first" in body
    assert _open_page(server, "aud_yz")[0] not in opened  # the others are not locked out
    shutdown = f"/voila/api/shutdown/{opened[0]}"
    assert _request(server, "city", shutdown, "POST")[0] == 204
    assert _open_page(server, "city")[0] not in opened  # a closed app frees a place


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _get(server: Server, path: str, cookie: str = "") -> tuple[int, dict[str, str], list[str]]:
    """Status, headers and Set-Cookie values of a GET, redirects not followed."""
    opener = urllib.request.build_opener(_NoRedirect)
    req = urllib.request.Request(server.url + path, headers={"Cookie": cookie} if cookie else {})
    try:
        with opener.open(req, timeout=120) as r:
            return r.status, dict(r.headers), r.headers.get_all("Set-Cookie") or []
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.headers.get_all("Set-Cookie") or []


def _session(set_cookies: list[str]) -> str:
    """The ``name=value`` of the login cookie among Set-Cookie headers."""
    return next(c.split(";")[0] for c in set_cookies if c.startswith("username-"))


def test_a_sign_in_link_sets_a_session_strips_the_token_and_logs_no_token(server: Server) -> None:
    token = server.tokens["aud_yz"]
    status, headers, cookies = _get(server, f"/?token={token}")
    assert status == 302 and headers["Location"] == "/"  # the token leaves the address bar
    session = _session(cookies)
    assert _get(server, "/", session)[0] == 200  # the cookie alone signs in
    assert token not in server.text_of_log()  # the access log scrubs it
    status, _, cleared = _get(server, "/logout", session)
    assert status == 200 and any(c.startswith("username-") and "expires" in c for c in cleared)


def test_rotating_a_token_signs_its_sessions_out(server: Server) -> None:
    old = server.tokens["han_s1"]
    session = _session(_get(server, f"/?token={old}")[2])
    assert _get(server, "/", session)[0] == 200
    tokens_file = server.log.parent / "tokens.json"
    tokens = json.loads(tokens_file.read_text(encoding="utf-8"))
    new = "n" * 32
    tokens[new] = tokens.pop(old)  # the administrator issues han_s1 a new token
    tokens_file.write_text(json.dumps(tokens), encoding="utf-8")
    server.tokens["han_s1"] = new
    status, headers, _ = _get(server, "/", session)
    assert status == 302 and "/login" in headers["Location"]  # the old session is over
    assert _get(server, f"/?token={new}")[0] == 302  # the new link signs in


def _fetch(server: Server, user: str | None, path: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a GET signed with ``user``'s token (or none), no redirects."""
    opener = urllib.request.build_opener(_NoRedirect)
    headers = {"Authorization": f"token {server.tokens[user]}"} if user else {}
    try:
        with opener.open(urllib.request.Request(server.url + path, headers=headers)) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_attachments_are_served_in_scope_typed_and_image_reencoded(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    from audit_lib.db import create_engine, session_factory
    from audit_lib.tasks.attachments import STORE_ENV, add_attachment
    from audit_lib.tasks.queries import list_tasks

    monkeypatch.setenv(STORE_ENV, str(server.store))  # the server's store
    picture = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(picture, "PNG")
    polyglot = picture.getvalue() + b"<script>alert(document.cookie)</script>"
    engine = create_engine(server.db)
    with session_factory(engine)() as s:
        task_id = next(r["id"] for r in list_tasks(s, "han_s1").rows if r["state"] != "archived")
        png = add_attachment(s, task_id, "seal.png", polyglot, "han_s1").sha256
        pdf = add_attachment(s, task_id, "notice.pdf", b"%PDF-1.4 evidence", "han_s1").sha256
        s.commit()
    engine.dispose()
    status, headers, body = _fetch(server, "rev_yz", f"/audit/attachment/{task_id}/{png}")
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert (
        headers["X-Content-Type-Options"] == "nosniff"
        and "sandbox" in headers["Content-Security-Policy"]
    )
    assert body.startswith(b"\x89PNG") and b"<script>" not in body  # only the pixels
    status, headers, body = _fetch(server, "rev_yz", f"/audit/attachment/{task_id}/{pdf}")
    assert status == 200 and headers["Content-Type"] == "application/pdf"
    assert headers["Content-Disposition"].startswith("attachment;") and body.startswith(b"%PDF")
    assert _fetch(server, "rev_jb", f"/audit/attachment/{task_id}/{png}")[0] == 403
    status, headers, _ = _fetch(server, None, f"/audit/attachment/{task_id}/{png}")
    assert status == 302 and "/login" in headers["Location"]
    assert _fetch(server, "rev_yz", f"/audit/attachment/{task_id}/{'0' * 64}")[0] == 404
    (REPO / "voila_apps" / "task_review").joinpath("probe.svg").write_text("<svg/>")
    try:  # whatever lies in an app's folder, Voila's file route serves none of it
        assert _fetch(server, "rev_yz", "/voila/files/task_review/probe.svg")[0] == 403
    finally:
        (REPO / "voila_apps" / "task_review" / "probe.svg").unlink()


def test_every_page_forbids_scripts_from_outside(server: Server) -> None:
    from audit_lib.ui.server.serve import APP_CSP

    for path in ("/", APP):
        status, headers, _ = _fetch(server, "aud_yz", path)
        assert status == 200 and headers["Content-Security-Policy"] == APP_CSP, path
        assert "https:" not in APP_CSP and "script-src 'self'" in APP_CSP
