"""Kernels of ``audit serve``: each belongs to the user who opened the page; a small pool.

**Ownership.** Voila checks that a request is signed in, not that the kernel it names is the
requester's: anyone signed in who learnt a kernel id could attach to another user's app
(read its widgets, click its buttons). Here the prelaunch hook names the signed-in user
(:func:`launching_as`) just before Voila asks for a kernel, :class:`AuditKernelManager`
records that user as the kernel's owner, and every route that takes a kernel id answers 403
to anyone else: the kernel model and the kernel websocket through
:class:`KernelOwnerAuthorizer` (jupyter_server's authorizer hook), the page-leave shutdown
through :class:`OwnedShutdownHandler`. A kernel with no recorded owner is nobody's.

**Pool.** A kernel started on demand costs its process start and the app's imports (about
1.7 s of CPU) before the first cell can run. The manager keeps ``pool_size`` kernels per app
started and warmed (:func:`audit_lib.ui.server.warmup.warm`: library imports only, no user, no
database) and hands one out when a page asks for a kernel; it then starts a replacement after
``fill_delay`` seconds. This is not Voila's preheating (which runs the whole notebook before
the request and so cannot take the prelaunch hook): the notebook, with the injected user,
runs only when the page is requested, as in a cold kernel. Pooled kernels are never culled
and never reused: a page's kernel is shut down when the page is left or culled when idle.
Pooled kernels were started with the server's environment, without the request variables
Voila adds for on-demand kernels (query string, request URL); the apps do not read them.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from typing import Any

from jupyter_server._tz import utcnow
from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado import web
from traitlets import Float, Integer, List, Unicode
from voila.shutdown_kernel_handler import VoilaShutdownKernelHandler

from audit_lib.ui.registry import APPS

_LAUNCHING: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "audit_launching_user", default=None
)


def launching_as(user: str) -> None:
    """Record ``user`` as the owner of the next kernel this request starts."""
    _LAUNCHING.set(user)


def _take_launching_user() -> str | None:
    user = _LAUNCHING.get()
    _LAUNCHING.set(None)
    return user


def kernel_owner(kernel_manager: Any, kernel_id: str) -> str | None:
    """The user who owns ``kernel_id`` (None: unknown kernel, or nobody's)."""
    owner = getattr(kernel_manager, "owner", None)
    return owner(kernel_id) if callable(owner) else None


def check_kernel_owner(handler: Any, kernel_id: str | None) -> None:
    """Raise 403 unless the request's signed-in user owns ``kernel_id``."""
    user = handler.current_user
    name = getattr(user, "username", None)
    if not name or not kernel_id or kernel_owner(handler.kernel_manager, kernel_id) != name:
        raise web.HTTPError(403, "this app session belongs to another user")


class AuditKernelManager(AsyncMappingKernelManager):
    """Mapping kernel manager with kernel owners and a pool of warmed kernels per app."""

    pool_size = Integer(1, config=True, help="started kernels kept ready per app (0: none)")
    pool_apps = List(
        Unicode(), default_value=sorted(APPS), config=True, help="app folders with a pool"
    )
    fill_delay = Float(5.0, config=True, help="seconds before replacing a kernel taken")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._owners: dict[str, str] = {}
        self._pool: dict[str, list[str]] = {}
        self._filling: dict[str, int] = {}
        self._fill_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ owners
    def owner(self, kernel_id: str) -> str | None:
        """The user who owns ``kernel_id``, if any."""
        return self._owners.get(kernel_id)

    def owned_count(self, user: str | None = None) -> int:
        """Kernels serving a user's page (the pool is not counted): every user's, or
        ``user``'s."""
        return sum(1 for k, o in self._owners.items() if k in self and user in (None, o))

    def pooled(self) -> dict[str, list[str]]:
        """Kernel ids waiting in the pool, per app folder."""
        return {path: list(ids) for path, ids in self._pool.items()}

    async def start_kernel(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        """A kernel for the page being requested: from the pool if one is ready."""
        owner = _take_launching_user()
        path = kwargs.get("path")
        kernel_id = await self._take(path, kwargs.get("kernel_name"))
        if kernel_id is None:
            kernel_id = str(await super().start_kernel(*args, **kwargs))
        if owner:
            self._owners[kernel_id] = owner
        self.log.info("Kernel %s for %s (%s)", kernel_id, owner or "nobody", path)
        if isinstance(path, str):
            self.fill(path, self.fill_delay)
        return kernel_id

    async def shutdown_kernel(self, kernel_id: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Shut the kernel down and forget its owner."""
        try:
            return await super().shutdown_kernel(kernel_id, *args, **kwargs)
        finally:
            self._owners.pop(kernel_id, None)
            for ids in self._pool.values():
                if kernel_id in ids:
                    ids.remove(kernel_id)

    async def cull_kernel_if_idle(self, kernel_id: str) -> Any:
        """Cull idle page kernels, never the pool's."""
        if any(kernel_id in ids for ids in self._pool.values()):
            return None
        return await super().cull_kernel_if_idle(kernel_id)

    # ------------------------------------------------------------------ pool
    async def _take(self, path: Any, kernel_name: Any) -> str | None:
        if not isinstance(path, str) or kernel_name not in (None, self.default_kernel_name):
            return None
        ids = self._pool.get(path, [])
        while ids:
            kernel_id = ids.pop(0)
            kernel: Any = self.get_kernel(kernel_id)
            if await kernel.is_alive():
                kernel.last_activity = utcnow()
                self.log.info("Kernel %s taken from the pool of %s", kernel_id, path)
                return kernel_id
            await self.shutdown_kernel(kernel_id, now=True)
        return None

    def fill_all(self) -> None:
        """Start filling the pool of every app (call once the event loop runs)."""
        for path in self.pool_apps:
            self.fill(path, 0.0)

    def fill(self, path: str, delay: float) -> None:
        """Start warmed kernels for ``path`` until its pool holds ``pool_size``."""
        if path not in self.pool_apps:
            return
        missing = self.pool_size - len(self._pool.get(path, [])) - self._filling.get(path, 0)
        for _ in range(max(0, missing)):
            self._filling[path] = self._filling.get(path, 0) + 1
            task = asyncio.ensure_future(self._fill_one(path, delay))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _fill_one(self, path: str, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            async with self._fill_lock:  # one at a time: the machine serves pages meanwhile
                kernel_id = str(await super().start_kernel(path=path))  # type: ignore[arg-type]
                try:
                    await self._warm(kernel_id, path)
                except Exception:
                    self.log.exception("could not warm kernel %s; shutting it down", kernel_id)
                    await self.shutdown_kernel(kernel_id, now=True)
                    return
            self._pool.setdefault(path, []).append(kernel_id)
            self.log.info("Kernel %s ready in the pool of %s", kernel_id, path)
        except Exception:
            self.log.exception("could not start a pooled kernel for %s", path)
        finally:
            self._filling[path] -= 1

    async def _warm(self, kernel_id: str, path: str) -> None:
        kernel: Any = self.get_kernel(kernel_id)
        client: Any = kernel.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=120)
            code = (
                "__import__('importlib').import_module('audit_lib.ui.server.warmup')"
                f".warm({json.dumps(path)})"
            )
            reply = await client.execute_interactive(
                code, silent=True, store_history=False, timeout=300, output_hook=lambda _m: None
            )
            if reply["content"]["status"] != "ok":
                raise RuntimeError(f"warm-up failed: {reply['content'].get('ename')}")
        finally:
            client.stop_channels()


class KernelOwnerAuthorizer(Authorizer):
    """Allows the kernel routes (model, websocket) only to the kernel's owner."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        """Everything but ``kernels``; a kernel only for its owner."""
        if resource != "kernels":
            return True
        kernel_id = handler.path_kwargs.get("kernel_id") or getattr(handler, "kernel_id", None)
        name = getattr(user, "username", None)
        ok = bool(name and kernel_id and kernel_owner(handler.kernel_manager, kernel_id) == name)
        if not ok:
            self.log.warning("%s may not %s kernel %s", name, action, kernel_id)
        return ok


class OwnedShutdownHandler(VoilaShutdownKernelHandler):
    """Voila's page-leave shutdown, for the kernel's owner only."""

    @web.authenticated
    async def post(self, kernel_id: str) -> None:
        """Shut down ``kernel_id`` if the signed-in user owns it."""
        check_kernel_owner(self, kernel_id)
        await super().post(kernel_id)
