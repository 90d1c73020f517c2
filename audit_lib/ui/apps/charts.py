"""The evidence chart of a task, as its own component.

One figure, two panels sharing the time axis: the customer's daily kWh with the band of
their peers (same station area and class, 10th–90th percentile), the detected change point
(:func:`audit_lib.detect.scoring.evidence.explain`) and meter events on the timeline; below, the
station area's daily line loss rate. Data come from the mart in four DuckDB queries.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import threading
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import pandas as pd

from audit_lib.errors import AuditError
from audit_lib.ui.i18n import label

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from audit_lib.data.access import Mart

# statsmodels (change points) and pyplot take seconds to import: the app shows first, they
# load in the background PRELOAD_DELAY_S later (see EvidenceChart) or on first use; a kernel
# from audit serve's pool has them already (audit_lib.ui.server.warmup).
SLOW_IMPORTS = ("audit_lib.detect.scoring.evidence", "matplotlib.pyplot")
PRELOAD_DELAY_S = 3.0

log = logging.getLogger(__name__)
HISTORY_DAYS = 180


@dataclass(frozen=True)
class Evidence:
    """What the chart shows for one customer and period."""

    kwh: pd.DataFrame  # date, kwh
    peers: pd.DataFrame  # date, p10, p90
    loss: pd.DataFrame  # date, loss_pct
    events: pd.DataFrame  # time, code
    change: dict[str, Any] | None
    period: tuple[dt.date, dt.date]


def _window(alias: str) -> str:
    """Partition and date condition on table ``alias`` (parameters: bureau, months, dates)."""
    return (
        f"{alias}.bureau = ? AND {alias}.month IN (SELECT unnest(?::VARCHAR[])) "
        f"AND {alias}.date BETWEEN ? AND ?"
    )


def load_evidence(mart: Mart, cons_no: str, bureau: str, start: dt.date, end: dt.date) -> Evidence:
    """Read the customer's readings, peers' band, area loss and events around a period."""
    first = start - dt.timedelta(days=HISTORY_DAYS)
    months = [str(p) for p in pd.period_range(first, end, freq="M")]
    args = [bureau, months, first, end]
    in_window = _window("readings")
    kwh = mart.sql(
        f"SELECT date, kwh FROM readings WHERE {in_window} AND cons_no = ? ORDER BY date",
        [*args, cons_no],
    )
    me = mart.sql(
        "SELECT area_id, cust_class FROM customers WHERE bureau = ? AND cons_no = ? LIMIT 1",
        [bureau, cons_no],
    )
    peers = pd.DataFrame(columns=["date", "p10", "p90"])
    loss = pd.DataFrame(columns=["date", "loss_pct"])
    if len(me):
        area, cls = str(me["area_id"].iat[0]), str(me["cust_class"].iat[0])
        peers = mart.sql(
            f"""
            SELECT r.date, quantile_cont(r.kwh, 0.1) AS p10, quantile_cont(r.kwh, 0.9) AS p90
            FROM readings r JOIN (SELECT cons_no FROM customers
                                  WHERE bureau = ? AND area_id = ? AND cust_class = ?) c
                 USING (cons_no)
            WHERE {_window("r")} AND r.cons_no <> ?
            GROUP BY r.date ORDER BY r.date
            """,
            [bureau, area, cls, *args, cons_no],
        )
        loss = mart.sql(
            f"""
            WITH used AS (
                SELECT r.date, sum(r.kwh) AS kwh FROM readings r
                JOIN (SELECT cons_no FROM customers WHERE bureau = ? AND area_id = ?) c
                     USING (cons_no)
                WHERE {_window("r")}
                GROUP BY r.date)
            SELECT s.date, 100 * (s.supply_kwh - u.kwh) / s.supply_kwh AS loss_pct
            FROM area_supply s JOIN used u USING (date)
            WHERE s.area_id = ? AND {_window("s")} AND s.supply_kwh > 0
            ORDER BY s.date
            """,
            [bureau, area, *args, area, *args],
        )
    events = mart.sql(
        "SELECT time, code FROM meter_events WHERE bureau = ? AND month IN "
        "(SELECT unnest(?::VARCHAR[])) AND cons_no = ? ORDER BY time",
        [bureau, months, cons_no],
    )
    change = None
    from audit_lib.detect.scoring.evidence import explain

    if len(kwh):
        try:
            change = explain(kwh.set_index("date")["kwh"])
        except AuditError as exc:
            log.info("no change point for %s: %s", cons_no, exc)
    return Evidence(kwh, peers, loss, events, change, (start, end))


CJK_FONTS = ("Noto Sans CJK SC", "WenQuanYi Zen Hei", "SimHei")


def _cjk_font() -> str | None:
    """The first installed font of :data:`CJK_FONTS`, if any."""
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    return next((f for f in CJK_FONTS if f in names), None)


def evidence_figure(ev: Evidence, lang: str = "zh") -> Figure:
    """Draw :class:`Evidence` (labels in English when no CJK font is installed)."""
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    cjk = _cjk_font()
    lang = lang if cjk else "en"
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
    if cjk:  # the figure's own fonts: the default one has no Chinese glyphs
        logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)  # not on the page
        for text in fig.findobj(Text):
            text.set_fontfamily([cjk, "DejaVu Sans"])
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def _preload() -> None:
    for name in SLOW_IMPORTS:
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
