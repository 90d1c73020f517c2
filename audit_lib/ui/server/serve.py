"""Serving the apps with Voila: command line, identity, landing page, evidence, limits.

:class:`AuditVoila` is Voila with these additions:

- the **prelaunch hook** (:func:`prelaunch_hook`) runs before each kernel starts: it takes
  the user the server authenticated, refuses apps the user's role may not open and refuses
  new kernels past the cap, names the user as the owner of the kernel about to start, and
  injects ``set_server_user(<name>)`` into the notebook's first cell. Voila cannot combine a
  prelaunch hook with its preheated kernels (they run the notebook before the request);
  instead the kernel manager keeps a few started, warmed kernels per app that have run no
  notebook yet (:mod:`audit_lib.ui.server.kernels`; measured in ``benchmarks/bench_ui.py``);
- **kernel ownership**: a kernel's model, websocket and shutdown routes answer 403 to
  anyone but the user it was started for (:mod:`audit_lib.ui.server.kernels`);
- a **landing page** at ``/`` listing the apps the signed-in user may open;
- ``/audit/evidence/<task>``: the executed notebook (its HTML report) of a task, served only
  if the user may see the task (the same scope check as the command line).
"""

from __future__ import annotations

import html
import io
import json
import os
import secrets
from functools import cache
from pathlib import Path
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.log import log_request
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from tornado import web
from tornado.ioloop import IOLoop
from voila.app import Voila

from audit_lib.db import create_engine, session_factory
from audit_lib.errors import AuditError, NotFound
from audit_lib.tasks.attachments import STORE_ENV, open_attachment, store_dir
from audit_lib.tasks.models import User
from audit_lib.tasks.service import get_task, get_user
from audit_lib.ui.i18n import label, role_label, ui_lang
from audit_lib.ui.registry import apps_for, may_open
from audit_lib.ui.server.identity import TOKENS_ENV
from audit_lib.ui.server.kernels import OwnedShutdownHandler, launching_as
from audit_lib.ui.user import check_user_name

APPS_DIR = Path("voila_apps")
MAX_KERNELS_ENV = "AUDIT_UI_MAX_KERNELS"
OUTPUTS_ENV = "AUDIT_OUTPUTS"
DEFAULT_MAX_KERNELS = 20
MAX_USER_KERNELS_ENV = "AUDIT_UI_MAX_KERNELS_PER_USER"
DEFAULT_MAX_USER_KERNELS = 3
"""Open apps one user may hold at once: a single user cannot take every kernel of the server."""
SHARE_DIR = Path(__file__).parent / "share"  # the "audit" Voila template (no CDN requests)
APP_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'self'; frame-ancestors 'self'"
)
"""The apps' pages run Voila's own scripts (inline ones too) and load nothing from anywhere
but this server: no CDN, no script of another origin."""
REPORT_CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "font-src 'self' data:; sandbox"
)
"""An evidence report is tables and pictures: it may run no script at all."""
POOL_SIZE_ENV = "AUDIT_UI_POOL_SIZE"
DEFAULT_POOL_SIZE = 1


def voila_argv(
    port: int,
    apps_dir: Path = APPS_DIR,
    *,
    cull_idle_timeout: int = 600,
    cull_interval: int = 60,
    tokens_file: Path | None = None,
    pool_size: int | None = None,
) -> list[str]:
    """The Voila command line of ``audit serve`` (127.0.0.1 only, culling on, owned kernels).

    ``pool_size`` warmed kernels are kept per app (0: every page starts its kernel; default
    ``AUDIT_UI_POOL_SIZE``, else 1).
    """
    if pool_size is None:
        pool_size = int(os.environ.get(POOL_SIZE_ENV, DEFAULT_POOL_SIZE))
    argv = [
        str(apps_dir),
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        "--no-browser",
        "--Voila.port_retries=0",
        f"--MappingKernelManager.cull_idle_timeout={cull_idle_timeout}",
        f"--MappingKernelManager.cull_interval={cull_interval}",
        "--Voila.identity_provider_class=audit_lib.ui.server.identity.TokenMapIdentityProvider",
        "--Voila.authorizer_class=audit_lib.ui.server.kernels.KernelOwnerAuthorizer",
        "--VoilaConfiguration.multi_kernel_manager_class=audit_lib.ui.server.kernels.AuditKernelManager",
        f"--AuditKernelManager.pool_size={pool_size}",
        "--VoilaConfiguration.show_tracebacks=False",
        "--VoilaConfiguration.file_allowlist=[]",  # /voila/files/ serves nothing of the apps
        "--VoilaConfiguration.template=audit",
        # the page needs only the widget manager: no JupyterLab preview button, no code CSS
        "--VoilaConfiguration.extension_denylist=@voila-dashboards/jupyterlab-preview",
        "--VoilaConfiguration.extension_denylist=jupyterlab_pygments",
    ]
    if tokens_file is not None:
        argv.append(f"--TokenMapIdentityProvider.tokens_file={tokens_file}")
    return argv


@cache
def _factory() -> sessionmaker[Session]:
    return session_factory(create_engine(None))


def _user_of(handler: Any) -> User:
    """The workbench user behind the request's authenticated server user."""
    who = handler.current_user
    if who is None:
        raise web.HTTPError(403, "not signed in")
    name = check_user_name(getattr(who, "username", ""))
    with _factory()() as session:
        try:
            return get_user(session, name)
        except AuditError as exc:
            raise web.HTTPError(403, str(exc)) from None


def _max_kernels() -> int:
    return int(os.environ.get(MAX_KERNELS_ENV, DEFAULT_MAX_KERNELS))


def _max_user_kernels() -> int:
    return int(os.environ.get(MAX_USER_KERNELS_ENV, DEFAULT_MAX_USER_KERNELS))


def prelaunch_hook(req: Any, notebook: Any, cwd: str) -> Any:
    """Check the user may open this app and inject their identity into the first cell."""
    user = _user_of(req)
    app = Path(cwd).name
    if not may_open(user.role, app):
        raise web.HTTPError(403, f"role {user.role} may not open {app}")
    km = req.kernel_manager
    counted = hasattr(km, "owned_count")
    mine = km.owned_count(user.name) if counted else 0
    if mine >= _max_user_kernels():
        raise web.HTTPError(  # the reason is the page's heading (an HTTP status line: ASCII)
            503, f"{user.name} has {mine} apps open", reason="Too many open apps: close one first"
        )
    running = km.owned_count() if counted else len(km.list_kernel_ids())
    if running >= _max_kernels():
        raise web.HTTPError(503, f"too many open apps ({running}); try again later")
    launching_as(user.name)
    _ = req.xsrf_token  # sets the _xsrf cookie that Voila's page-leave shutdown sends back
    inject = (
        f"import audit_lib.ui.user as _audit_user\n_audit_user.set_server_user({user.name!r})\n"
    )
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.source = inject + cell.source
            break
    return notebook


class LandingHandler(JupyterHandler):
    """``/``: the apps the signed-in user may open."""

    @web.authenticated
    def get(self) -> None:
        """Render the list of apps (a sign-in link's token is taken out of the address first:
        the session cookie is set, and the token stays out of the browser's history)."""
        if self.get_query_argument("token", default=None) is not None:
            self.redirect(self.base_url)
            return
        user = _user_of(self)
        lang = ui_lang(None)
        items = "".join(
            f"<li><a class='audit-app-link' id='app-{app.name}' "
            f"href='{self.base_url}voila/render/{app.name}/{app.name}.ipynb'>{app.title(lang)}</a>"
            "</li>"
            for app in apps_for(user.role)
        )
        who = f"{html.escape(user.name)} · {html.escape(role_label(user.role, lang))}"
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(
            "<!doctype html><html><head><meta charset='utf-8'><title>营销稽查监控</title></head>"
            f"<body><h1>营销稽查监控工作台</h1><p>{who}</p><h2>{label('landing', lang)}</h2>"
            f"<ul>{items}</ul></body></html>"
        )


class LogoutHandler(JupyterHandler):
    """``/logout``: end the browser's session (its cookie); the sign-in link works again."""

    def get(self) -> None:
        """Clear the session cookie and say so."""
        self.identity_provider.clear_login_cookie(self)
        lang = ui_lang(None)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(
            "<!doctype html><html><head><meta charset='utf-8'><title>营销稽查监控</title></head>"
            f"<body><h1>营销稽查监控工作台</h1><p id='audit-signed-out'>{label('signed_out', lang)}"
            "</p></body></html>"
        )


class AttachmentHandler(JupyterHandler):
    """``/audit/attachment/<task id>/<sha256>``: a task's evidence file, scope-checked.

    The type is the store's (never the browser's guess: ``nosniff``); a raster image is
    decoded and encoded again (nothing but pixels reaches the page) and shown, every other
    file is only downloaded; the response may run no script (a sandboxing policy)."""

    @web.authenticated
    def get(self, task_id: str, sha256: str) -> None:
        """Send the file, or 403 / 404 without saying more."""
        user = _user_of(self)
        with _factory()() as session:
            try:
                path, kind = open_attachment(session, int(task_id), sha256, user)
            except AuditError as exc:
                code = 404 if isinstance(exc, NotFound) else 403
                raise web.HTTPError(code, str(exc)) from None
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", "default-src 'none'; sandbox")
        self.set_header("Cache-Control", "private, no-store")
        if kind.image:
            body, mime = reencode_image(path)
            self.set_header("Content-Type", mime)
            self.finish(body)
            return
        self.set_header("Content-Type", kind.mime)
        self.set_header("Content-Disposition", f'attachment; filename="{path.name}"')
        self.finish(path.read_bytes())


def reencode_image(path: Path) -> tuple[bytes, str]:
    """A raster image decoded and written again as PNG: only its pixels remain."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        out = io.BytesIO()
        image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB").save(out, "PNG")
    return out.getvalue(), "image/png"


class EvidenceHandler(JupyterHandler):
    """``/audit/evidence/<task id>``: the task's executed notebook, scope-checked."""

    @web.authenticated
    def get(self, task_id: str) -> None:
        """Send the HTML report (or the notebook) that raised the task."""
        user = _user_of(self)
        with _factory()() as session:
            try:
                task = get_task(session, int(task_id), user)
            except AuditError as exc:
                raise web.HTTPError(403, str(exc)) from None
        root = Path(os.environ.get(OUTPUTS_ENV, "outputs")).resolve()
        if not task.notebook:
            raise web.HTTPError(404, "no notebook")
        notebook = Path(task.notebook).resolve()
        if not notebook.is_relative_to(root):
            raise web.HTTPError(404, "notebook outside the outputs folder")
        report = notebook.with_suffix(".html")
        chosen = report if report.is_file() else notebook
        if not chosen.is_file():
            raise web.HTTPError(404, "the executed notebook is no longer there")
        self.set_header("Content-Security-Policy", REPORT_CSP)  # a report runs no script
        kind = "text/html" if chosen.suffix == ".html" else "application/x-ipynb+json"
        self.set_header("Content-Type", f"{kind}; charset=utf-8")
        self.finish(chosen.read_bytes())


class AuditVoila(Voila):
    """Voila with the identity hook, the landing page and the evidence route."""

    def init_settings(self) -> dict[str, Any]:
        """Install the prelaunch hook, let Voila build its settings, start the kernel pool."""
        self.voila_configuration.prelaunch_hook = prelaunch_hook
        if self.voila_configuration.progressive_rendering:
            # its /voila/execution/<kernel> route does not go through the owner check
            raise AuditError("audit serve does not support progressive rendering")
        settings: dict[str, Any] = super().init_settings()
        settings["log_function"] = log_request  # jupyter_server's: a token never reaches a log
        headers = settings.setdefault("headers", {})
        headers["Content-Security-Policy"] = APP_CSP  # every page: nothing from outside
        fill = getattr(self.kernel_manager, "fill_all", None)
        if fill is not None:
            IOLoop.current().add_callback(fill)
        return settings

    def init_handlers(self) -> list[Any]:
        """Voila's handlers, with ours first (tornado takes the first match)."""
        root = self.server_url.rstrip("/")
        ours: list[Any] = [
            (root + "/?", LandingHandler),
            (root + "/logout", LogoutHandler),
            (root + r"/audit/attachment/(\d+)/([0-9a-f]{64})", AttachmentHandler),
            (root + r"/audit/evidence/(\d+)", EvidenceHandler),
            (root + r"/voila/api/shutdown/(.*)", OwnedShutdownHandler),
        ]
        handlers: list[Any] = super().init_handlers()
        return ours + handlers


def issue_tokens(factory: sessionmaker[Session], path: Path) -> dict[str, str]:
    """Write a token for every active user to ``path`` (JSON token → user); return it."""
    with factory() as session:
        names = session.execute(select(User.name).where(User.active).order_by(User.name))
        tokens = {secrets.token_urlsafe(24): str(n) for n in names.scalars()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(tokens, ensure_ascii=False, indent=1), encoding="utf-8")
    path.chmod(0o600)
    return tokens


def absolute_db_url(url: str) -> str:
    """``url`` with a relative SQLite file made absolute (kernels run in the app's folder)."""
    parsed = make_url(url)
    db = parsed.database
    if (
        parsed.get_backend_name() != "sqlite"
        or not db
        or db == ":memory:"
        or Path(db).is_absolute()
    ):
        return url
    return parsed.set(database=str(Path(db).resolve())).render_as_string(hide_password=False)


def serve(argv: list[str], env: dict[str, str]) -> None:
    """Run the Voila server in this process with ``env`` added (blocks until stopped)."""
    env = dict(env)
    if env.get("AUDIT_DB_URL"):
        env["AUDIT_DB_URL"] = absolute_db_url(env["AUDIT_DB_URL"])
    os.environ.update(env)
    # the apps' kernels start in their own folders: the store's path is made absolute here,
    # outside every folder the server serves (before, uploads landed in voila_apps/…)
    os.environ[STORE_ENV] = str(store_dir())
    jupyter_path = [
        str(SHARE_DIR),
        *filter(None, os.environ.get("JUPYTER_PATH", "").split(os.pathsep)),
    ]
    os.environ["JUPYTER_PATH"] = os.pathsep.join(jupyter_path)  # where the template is found
    if TOKENS_ENV not in os.environ:
        raise AuditError(f"{TOKENS_ENV} is not set")
    AuditVoila.launch_instance(argv=argv)
