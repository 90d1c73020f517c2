"""Who is signed in to the server: token sign-in for a standalone ``audit serve``.

The kernel learns the user from the server (:mod:`audit_lib.ui.user`): the prelaunch hook
(:func:`audit_lib.ui.server.serve.prelaunch_hook`) injects it into the app's first cell.

Standalone server (no JupyterHub): :class:`TokenMapIdentityProvider` maps secret tokens to
workbench users. The map is a JSON file named by ``AUDIT_UI_TOKENS``::

    {"9f0c…(at least 16 characters)…": "rev_yz", "47aa…": "han_s1"}

A user opens ``http://127.0.0.1:8866/?token=<their token>`` once (or types the token on the
login page); the server then keeps them signed in with a secure cookie, honoured only while
their token is still in the file (deleting the line revokes access at the next request). Each
token names an existing user of the database (``audit users add``); the file is the
administrator's.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User
from traitlets import Unicode

from audit_lib.errors import ConfigError
from audit_lib.ui.user import USER_NAME

TOKENS_ENV = "AUDIT_UI_TOKENS"
MIN_TOKEN_LENGTH = 16


def load_token_map(path: str | Path | None = None) -> dict[str, str]:
    """Read the token → user map (JSON object), by default from ``AUDIT_UI_TOKENS``.

    Raises
    ------
    ConfigError
        Missing file, not a JSON object of strings, a token shorter than 16 characters, or
        an invalid user name; the message names the file and the entry.
    """
    where = path or os.environ.get(TOKENS_ENV)
    if not where:
        raise ConfigError(f"no token map: set {TOKENS_ENV} to a JSON file of token → user")
    file = Path(where)
    try:
        data: Any = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"token map not found: {file}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"token map {file} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"token map {file} must be a JSON object of token → user")
    out: dict[str, str] = {}
    for i, (token, name) in enumerate(data.items()):
        if not isinstance(name, str) or not USER_NAME.match(name):
            raise ConfigError(f"token map {file}, entry {i}: invalid user name {name!r}")
        if len(token) < MIN_TOKEN_LENGTH:
            raise ConfigError(
                f"token map {file}, entry {i} ({name}): token shorter than {MIN_TOKEN_LENGTH}"
            )
        out[token] = name
    return out


def fingerprint(token: str) -> str:
    """A short digest of a sign-in token: what a session cookie remembers of it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


@dataclass
class SignedInUser(User):
    """A user signed in with a token; ``token_fp`` (its :func:`fingerprint`) travels in the
    signed session cookie, so the session ends when that token is rotated or revoked."""

    token_fp: str = ""


class TokenMapIdentityProvider(IdentityProvider):
    """jupyter_server identity from a token → user map (standalone ``audit serve``).

    The token arrives as ``?token=…``, an ``Authorization: token …`` header or on the login
    form; the user is then remembered in the server's signed cookie, with the fingerprint of
    the token: a session lasts while that token is in the map (a rotated or deleted token
    signs its sessions out at their next request).
    """

    tokens_file = Unicode("", config=True, help="JSON file of token → user name")

    def _tokens(self) -> dict[str, str]:
        return load_token_map(self.tokens_file or None)

    @property
    def auth_enabled(self) -> bool:
        """Authentication is always on."""
        return True

    def _user(self, token: str | None) -> User | None:
        name = self._tokens().get(token or "")
        if name is None or token is None:
            return None
        return SignedInUser(
            username=name, name=name, display_name=name, token_fp=fingerprint(token)
        )

    def user_to_cookie(self, user: User) -> str:
        """The session cookie's content: the user name and their token's fingerprint."""
        return json.dumps({"username": user.username, "fp": getattr(user, "token_fp", "")})

    def user_from_cookie(self, cookie_value: str) -> User | None:
        """The user of a session cookie (no check of the token yet: :meth:`get_user_cookie`)."""
        try:
            data = json.loads(cookie_value)
            name, fp = str(data["username"]), str(data["fp"])
        except (ValueError, KeyError, TypeError):
            return None
        return SignedInUser(username=name, name=name, display_name=name, token_fp=fp)

    async def get_user_cookie(self, handler: Any) -> User | None:
        """The cookie's user, only while the token they signed in with is still in the map."""
        found = super().get_user_cookie(handler)
        user = await found if inspect.isawaitable(found) else found
        if user is None:
            return None
        current = {(name, fingerprint(token)) for token, name in self._tokens().items()}
        if (user.username, getattr(user, "token_fp", "")) not in current:
            return None
        return user

    async def get_user_token(self, handler: Any) -> User | None:
        """The user whose token the request carries, if any."""
        return self._user(self.get_token(handler))

    def process_login_form(self, handler: Any) -> User | None:
        """The user whose token was typed on the login page, if any."""
        return self._user(handler.get_argument("password", default=""))
