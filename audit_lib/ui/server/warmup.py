"""Kernel side of the kernel pool: import an app's modules before anyone opens it.

:class:`audit_lib.ui.server.kernels.AuditKernelManager` keeps a few kernels started per app and runs
``warm(<app>)`` in them. Only library code is imported: no database is opened, no user is
known, nothing of the page exists yet. The user is bound later, when the page is requested,
by the code the prelaunch hook injects (:func:`audit_lib.ui.server.serve.prelaunch_hook`), exactly as
in a kernel started on demand.
"""

from __future__ import annotations

import importlib
import os

# What each app imports when its first cell runs (and, when a mart is configured, the
# evidence chart's slow imports, which the app would otherwise load in the background).
APP_MODULES: dict[str, tuple[str, ...]] = {
    "task_review": ("audit_lib.ui.apps.review",),
    "task_handling": ("audit_lib.ui.apps.handling",),
    "dashboard": ("audit_lib.ui.apps.dashboard",),
}
CHART_APPS = frozenset({"task_review", "task_handling"})


def warm(app: str) -> list[str]:
    """Import the modules of ``app`` (a key of :data:`APP_MODULES`); return their names."""
    names = list(APP_MODULES.get(app, ()))
    if app in CHART_APPS and os.environ.get("AUDIT_MART"):
        from audit_lib.ui.apps.charts import SLOW_IMPORTS

        names += SLOW_IMPORTS
    for name in names:
        importlib.import_module(name)
    return names
