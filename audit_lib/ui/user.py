"""Who is using an app, on the kernel's side: the user the server authenticated.

The user name is never read from the query string or from a widget the user can edit. It
comes from, in this order:

1. the Voila server: ``audit serve`` authenticates the request (see
   :mod:`audit_lib.ui.server.identity`) and its prelaunch hook injects
   ``set_server_user(<name>)`` into the notebook's first cell before the kernel runs it;
2. JupyterHub: a single-user server runs with ``JUPYTERHUB_USER`` set by the hub.
"""

from __future__ import annotations

import os
import re

from audit_lib.errors import PermissionDenied

HUB_USER_ENV = "JUPYTERHUB_USER"
USER_NAME = re.compile(r"^[\w.@-]{1,64}$")

_server_user: str | None = None


def check_user_name(name: str) -> str:
    """Return ``name`` if it is a plausible user name (letters, digits, ``_.@-``)."""
    if not isinstance(name, str) or not USER_NAME.match(name):
        raise PermissionDenied(f"无效的用户名 invalid user name {name!r}")
    return name


def set_server_user(name: str) -> None:
    """Record the user the server authenticated (called by code the server injects)."""
    global _server_user
    _server_user = check_user_name(name)


def current_user() -> str:
    """The authenticated user of this kernel's server.

    Raises
    ------
    PermissionDenied
        If no server identity is known (the app was not opened through ``audit serve`` or
        JupyterHub).
    """
    if _server_user is not None:
        return _server_user
    hub = os.environ.get(HUB_USER_ENV)
    if hub:
        return check_user_name(hub)
    raise PermissionDenied(
        "未登录：请通过 audit serve 或 JupyterHub 打开应用 "
        "(no authenticated user: open the app through audit serve or JupyterHub)"
    )
