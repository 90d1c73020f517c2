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

from audit_lib.ui.registry import APPS


def warm(app: str) -> list[str]:
    """Import the modules of ``app`` (a name of :data:`audit_lib.ui.registry.APPS`) and, when a
    mart is configured, its evidence chart's slow imports; return their names."""
    spec = APPS.get(app)
    if spec is None:
        return []
    names = list(spec.warm_modules)
    if os.environ.get("AUDIT_MART"):
        names += spec.chart_modules
    for name in names:
        importlib.import_module(name)
    return names
