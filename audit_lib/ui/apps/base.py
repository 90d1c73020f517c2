"""What every app shares: the database and mart connections, the user, the status line.

Handlers run through :meth:`AppBase.run`: an :class:`~audit_lib.errors.AuditError` becomes a
one-line message on the page; anything else is logged on the server and the page only says
that an internal error happened (no code, no traceback reaches the browser).
"""

from __future__ import annotations

import html
import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import ipywidgets as widgets
from sqlalchemy.orm import Session, sessionmaker

from audit_lib.db import create_engine, session_factory
from audit_lib.errors import AuditError, ConfigError
from audit_lib.tasks.service import get_user
from audit_lib.ui.i18n import label, role_label, ui_lang
from audit_lib.ui.user import current_user

if TYPE_CHECKING:
    from audit_lib.data.access import Mart

log = logging.getLogger(__name__)
MART_ENV = "AUDIT_MART"
T = TypeVar("T", bound="AppBase")


def connect(db_url: str | None = None) -> sessionmaker[Session]:
    """A session factory on ``db_url`` (default ``AUDIT_DB_URL``, see :mod:`audit_lib.db`)."""
    return session_factory(create_engine(db_url))


def open_mart(path: str | Path | None = None) -> Mart | None:
    """The mart at ``path`` (default ``AUDIT_MART``), or None if none is configured."""
    where = path or os.environ.get(MART_ENV)
    if not where:
        return None
    if not Path(where).is_dir():
        raise ConfigError(f"mart folder not found: {where}")
    from audit_lib.data.access import Mart

    return Mart(where)


class _ServerLog(logging.StreamHandler):
    """Writes log records to the kernel process's stderr, which the server logs."""


def log_to_server() -> None:
    """Send log records (library warnings, ``log.exception``) to the server log.

    Without a handler, Python writes them to ``sys.stderr``, which the kernel shows on the
    page (for example matplotlib's font warnings, or a traceback).
    """
    root = logging.getLogger()
    if not any(isinstance(h, _ServerLog) for h in root.handlers):
        root.addHandler(_ServerLog(sys.__stderr__))


def error_view(message: str) -> widgets.HTML:
    """A page saying what went wrong, in one line."""
    view = widgets.HTML(f"<div class='audit-error'><b>⚠</b> {html.escape(message)}</div>")
    view.add_class("audit-error")
    return view


class ErrorApp:
    """Stands in for an app that could not be built (unknown user, bad setting)."""

    def __init__(self, message: str) -> None:
        self.view = error_view(message)


class AppBase:
    """The user, language, connections and status line of an app."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        user: str,
        *,
        mart: Mart | None = None,
        lang: str | None = None,
    ) -> None:
        self.factory = factory
        self.mart = mart
        self.lang = ui_lang(lang)
        with factory() as session:
            me = get_user(session, user)
            self.user, self.role = me.name, me.role
            self.bureau, self.station = me.bureau, me.station_id
        self.status = widgets.HTML()
        self.status.add_class("audit-status")
        scope = self.bureau or "市公司 city"
        self.who = widgets.HTML(
            f"{label('user', self.lang)}: <b>{html.escape(self.user)}</b> · "
            f"{html.escape(role_label(self.role, self.lang))} · {html.escape(scope)}"
        )
        self.who.add_class("audit-user")

    @classmethod
    def for_current_user(
        cls: type[T],
        db_url: str | None = None,
        mart: str | Path | None = None,
        lang: str | None = None,
        **kwargs: Any,
    ) -> T | ErrorApp:
        """The app for the server's authenticated user (see :mod:`audit_lib.ui.user`).

        The kernel serves this one app, so warnings are silenced for good: they would show
        file paths and code on the page; log records go to the server log (the kernel
        process's own stderr), not to the page.
        """
        warnings.simplefilter("ignore")
        log_to_server()
        try:
            return cls(connect(db_url), current_user(), mart=open_mart(mart), lang=lang, **kwargs)
        except AuditError as exc:
            return ErrorApp(str(exc))
        except Exception:
            log.exception("could not build %s", cls.__name__)
            return ErrorApp("内部错误，请联系管理员 (internal error; see the server log)")

    def say(self, text: str, *, error: bool = False) -> None:
        """Show ``text`` on the status line."""
        colour = "#c0392b" if error else "#27ae60"
        self.status.value = f"<span style='color:{colour}'>{html.escape(text)}</span>"

    def run(self, fn: Callable[[], Any]) -> bool:
        """Call ``fn``; show an AuditError's message, hide anything else. True on success."""
        try:
            fn()
        except AuditError as exc:
            self.say(str(exc), error=True)
            return False
        except Exception:
            log.exception("%s failed", type(self).__name__)
            self.say("内部错误，请联系管理员 (internal error; see the server log)", error=True)
            return False
        return True
