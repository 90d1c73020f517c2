"""The one list of the Voila apps: folder, module, titles, roles and what a warm kernel imports.

The web server (landing page, prelaunch check, kernel pool), the warm-up, the identity check
and ``audit serve`` all read :data:`APPS`; adding an app is one entry here and a two-cell
notebook under ``voila_apps/<name>/<name>.ipynb``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class App:
    """One Voila app.

    Attributes
    ----------
    name
        Folder under ``voila_apps/`` and the notebook's stem.
    module
        The module of the app's class (what its first cell imports).
    title_zh, title_en
        Titles on the landing page.
    roles
        Roles that may open it (four-eyes and scope are checked again by every action).
    warm_modules
        Modules a pooled kernel imports before anyone opens the app.
    chart_modules
        Slow imports of the evidence chart, warmed too when a mart is configured.
    """

    name: str
    module: str
    title_zh: str
    title_en: str
    roles: frozenset[str]
    warm_modules: tuple[str, ...]
    chart_modules: tuple[str, ...] = ()

    def title(self, lang: str) -> str:
        """The title in ``lang`` (``zh`` or ``en``)."""
        return self.title_zh if lang == "zh" else self.title_en


EVIDENCE_CHART_MODULES = (
    "audit_lib.workflows.evidence",
    "audit_lib.detect.scoring.evidence",
    "matplotlib.pyplot",
)
"""What the evidence chart imports on first use (statsmodels and pyplot take seconds)."""

APPS: Mapping[str, App] = MappingProxyType(
    {
        app.name: app
        for app in (
            App(
                "task_review", "audit_lib.ui.apps.review", "稽查任务审核", "Audit task review",
                frozenset({"reviewer", "city_auditor", "bureau_auditor", "admin"}),
                ("audit_lib.ui.apps.review",), EVIDENCE_CHART_MODULES,
            ),
            App(
                "task_handling", "audit_lib.ui.apps.handling", "稽查任务处理",
                "Audit task handling",
                frozenset({"station_handler", "bureau_auditor", "city_auditor"}),
                ("audit_lib.ui.apps.handling",), EVIDENCE_CHART_MODULES,
            ),
            App(
                "dashboard", "audit_lib.ui.apps.dashboard", "运营展示与稽查闭环",
                "Operations display and audit loop",
                frozenset({"reviewer", "city_auditor", "bureau_auditor", "station_handler",
                           "theme_owner", "admin"}),
                ("audit_lib.ui.apps.dashboard",),
            ),
        )
    }
)  # fmt: skip
"""Every app, in landing-page order."""


def apps_for(role: str) -> list[App]:
    """The apps a role may open, in display order."""
    return [app for app in APPS.values() if role in app.roles]


def may_open(role: str, app: str) -> bool:
    """Whether ``role`` may open the app named ``app`` (unknown apps: no)."""
    return app in APPS and role in APPS[app].roles
