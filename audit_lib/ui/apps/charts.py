"""The evidence chart of a task, as its own component.

One figure, two panels sharing the time axis: the customer's daily kWh with the band of
their peers, the detected change point and meter events on the timeline; below, the station
area's daily line loss rate. What it shows comes from :mod:`audit_lib.workflows.evidence`.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import threading
import warnings
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import pandas as pd

from audit_lib.ui.i18n import label
from audit_lib.ui.registry import EVIDENCE_CHART_MODULES
from audit_lib.workflows.evidence import Evidence, load_evidence

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from audit_lib.data.access import Mart

# statsmodels (change points) and pyplot take seconds to import: the app shows first, they
# load in the background PRELOAD_DELAY_S later (see EvidenceChart) or on first use; a kernel
# from audit serve's pool has them already (audit_lib.ui.server.warmup).
PRELOAD_DELAY_S = 3.0

log = logging.getLogger(__name__)


def evidence_figure(ev: Evidence, lang: str = "zh") -> Figure:
    """Draw :class:`Evidence` (labels in English when no CJK font is installed), with the
    charts' fonts (:func:`audit_lib.kpi.charts.chart`; pyplot is imported on first use)."""
    from audit_lib.kpi.charts import chart, has_chinese_font

    return chart(_draw_evidence)(ev, lang if has_chinese_font() else "en")


def _draw_evidence(ev: Evidence, lang: str) -> Figure:
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(9, 4.8), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    if len(ev.peers):
        top.fill_between(
            pd.to_datetime(ev.peers["date"]),
            ev.peers["p10"].astype(float),
            ev.peers["p90"].astype(float),
            color="#95a5a6",
            alpha=0.35,
            label=label("chart_peers", lang),
        )
    top.plot(pd.to_datetime(ev.kwh["date"]), ev.kwh["kwh"], color="#2c3e50", lw=1, label="kWh")
    top.axvspan(pd.Timestamp(ev.period[0]), pd.Timestamp(ev.period[1]), color="#f1c40f", alpha=0.15)
    if ev.change is not None:
        top.axvline(
            pd.Timestamp(ev.change["change_day"]),
            color="#c0392b",
            ls="--",
            label=f"{label('chart_change', lang)} {ev.change['change_pct']:+.0f}%",
        )
    for i, (time, code) in enumerate(ev.events.itertuples(index=False)):
        top.axvline(pd.Timestamp(time), color="#8e44ad", lw=0.8, alpha=0.7)
        top.annotate(str(code), (pd.Timestamp(time), 1.0), xycoords=("data", "axes fraction"),
                     fontsize=7, color="#8e44ad", rotation=90, va="top")  # fmt: skip
        if i >= 30:
            break
    top.set_ylabel(label("chart_kwh", lang))
    top.legend(loc="upper left", fontsize=7)
    if len(ev.loss):
        bottom.plot(pd.to_datetime(ev.loss["date"]), ev.loss["loss_pct"], color="#d35400", lw=1)
    bottom.set_ylabel(label("chart_loss", lang), fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def _preload() -> None:
    for name in EVIDENCE_CHART_MODULES:
        importlib.import_module(name)


class EvidenceChart:
    """A widget showing the evidence chart of the selected task."""

    def __init__(self, mart: Mart | None, lang: str = "zh") -> None:
        self.mart = mart
        self.lang = lang
        self.view = widgets.Output()
        self.view.add_class("audit-evidence-chart")
        self.shown: Evidence | None = None
        if mart is not None:  # later: the page's first render must not share the CPU
            timer = threading.Timer(PRELOAD_DELAY_S, _preload)
            timer.daemon = True
            timer.start()

    def show(self, task: dict[str, Any]) -> None:
        """Draw the chart of ``task`` (a :func:`show_task` view); a note if there is no data."""
        self.view.clear_output()
        self.shown = None
        if self.mart is None or task.get("entity_kind") != "customer":
            with self.view:
                print(label("chart_none", self.lang))
            return
        ev = load_evidence(
            self.mart,
            str(task["entity"]),
            str(task["bureau"]),
            dt.date.fromisoformat(task["period_start"]),
            dt.date.fromisoformat(task["period_end"]),
        )
        with self.view, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # font fallbacks etc. must not reach the page
            if not len(ev.kwh):
                print(label("chart_none", self.lang))
                return
            fig = evidence_figure(ev, self.lang)
            import matplotlib.pyplot as plt
            from IPython.display import display

            display(fig)
            plt.close(fig)
        self.shown = ev
