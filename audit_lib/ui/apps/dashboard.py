"""The operations display (运营展示) with the audit loop's own numbers, per bureau.

Top: one row per bureau in the viewer's scope — sales kWh, revenue, average price,
collection rate, line loss rate, qualified areas, meter-reading completeness, complaints
(:func:`audit_lib.kpi.business.business_indicators`) beside tasks raised, closed on time,
overdue, hit rate and money recovered (:func:`audit_lib.kpi.loop.loop_numbers`).
Drill-down: pick a bureau to see its stations' loop numbers and its monthly trends.
"""

from __future__ import annotations

import datetime as dt
import html
import warnings
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from audit_lib.data.access import Mart
from audit_lib.data.periods import parse_period
from audit_lib.kpi.business import business_indicators, indicator_names
from audit_lib.kpi.charts import indicator_trends
from audit_lib.kpi.loop import LOOP_COLUMNS, loop_numbers
from audit_lib.tasks.models import Task
from audit_lib.tasks.policy import scope_filter
from audit_lib.tasks.service import get_user
from audit_lib.ui.apps.base import AppBase
from audit_lib.ui.i18n import label


def _frame_html(frame: pd.DataFrame, css: str) -> str:
    return str(frame.to_html(index=False, classes=css, na_rep="—", float_format="{:,.2f}".format))


class DashboardApp(AppBase):
    """Bureau table (business + loop numbers) and a drill-down per bureau."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        user: str,
        *,
        mart: Mart | None = None,
        lang: str | None = None,
        period: str | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        super().__init__(factory, user, mart=mart, lang=lang)
        self.now = now
        self.table: pd.DataFrame = pd.DataFrame()
        self.stations: pd.DataFrame = pd.DataFrame()
        self._build(period)
        self.refresh()

    def _bureaus(self) -> list[str]:
        with self.factory() as session:
            me = get_user(session, self.user)
            found = session.execute(
                select(Task.bureau).distinct().where(scope_filter(me)).order_by(Task.bureau)
            ).scalars()
            bureaus = set(found)
        if self.mart is not None:
            codes = self.mart.bureau_codes()
            bureaus |= set(codes if self.bureau is None else [self.bureau] if self.bureau in codes
                           else [])  # fmt: skip
        return sorted(bureaus)

    def _build(self, period: str | None) -> None:
        lang = self.lang
        months = self._months()
        self.period = widgets.Dropdown(
            options=months or [period or dt.date.today().strftime("%Y-%m")],
            value=period if period in months else (months[-1] if months else None),
            description=label("period", lang),
        )
        if period and period not in months:
            self.period.options = [period]
            self.period.value = period
        self.drill = widgets.Dropdown(
            options=[("—", None)] + [(b, b) for b in self._bureaus()],
            description=label("drill", lang),
        )
        self.period.add_class("audit-dash-period")
        self.drill.add_class("audit-dash-drill")
        self.period.observe(self._on_period_change, names="value")
        self.drill.observe(self._on_drill_change, names="value")
        self.overview = widgets.HTML()
        self.overview.add_class("audit-dash-overview")
        self.detail = widgets.HTML()
        self.detail.add_class("audit-dash-detail")
        self.trend = widgets.Output()
        self.trend.add_class("audit-dash-trend")
        self.view = widgets.VBox(
            [
                widgets.HTML(f"<h2>{label('dashboard_title', lang)}</h2>"),
                self.who,
                widgets.HBox([self.period, self.drill]),
                self.status,
                self.overview,
                self.detail,
                self.trend,
            ]
        )
        self.view.add_class("audit-dashboard-app")

    def _months(self) -> list[str]:
        if self.mart is None:
            return []
        rows = self.mart.sql("SELECT DISTINCT month FROM bills ORDER BY month")
        return [str(m) for m in rows["month"]][-24:]

    def _span(self) -> tuple[dt.date, dt.date]:
        return parse_period(str(self.period.value))

    def refresh(self) -> None:
        """Recompute the bureau table for the chosen period."""
        self.run(self._load_overview)

    def _load_overview(self) -> None:
        start, end = self._span()
        with self.factory() as session:
            loop = loop_numbers(session, self.user, start, end, now=self.now)
        loop = loop.rename(columns={"unit": "bureau"})
        frames = [self._business(b, start, end) for b in self._bureaus()]
        business = pd.concat([f for f in frames if not f.empty] or [pd.DataFrame({"bureau": []})])
        table = business.merge(loop, on="bureau", how="outer") if len(business) else loop
        self.table = table.reset_index(drop=True)
        self.overview.value = _frame_html(self._named(self.table), "audit-dash-table")

    def _business(self, bureau: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        if self.mart is None or bureau not in self.mart.bureau_codes():
            return pd.DataFrame()
        ind = business_indicators(self.mart, bureau, start, end)
        sums = ["customers", "sales_kwh", "revenue"]
        out = ind.drop(columns=["month"]).groupby("bureau").mean(numeric_only=True)
        out[sums] = ind.groupby("bureau")[sums].sum()
        return out.reset_index()

    def _named(self, frame: pd.DataFrame) -> pd.DataFrame:
        names: dict[str, str] = indicator_names(self.lang)
        names |= {c: label(c, self.lang) for c in LOOP_COLUMNS}
        names["bureau"] = label("bureau", self.lang)
        return frame.rename(columns=names)

    def _on_period_change(self, _change: dict[str, Any]) -> None:
        self.refresh()
        self._on_drill_change({"new": self.drill.value})

    def _on_drill_change(self, change: dict[str, Any]) -> None:
        bureau = change["new"]
        self.detail.value = ""
        self.trend.clear_output()
        if bureau is None:
            return
        if bureau not in self._bureaus():
            self.say(f"无权查看 {bureau} (out of scope)", error=True)
            return

        def drill() -> None:
            start, end = self._span()
            with self.factory() as session:
                self.stations = loop_numbers(session, self.user, start, end, bureau=bureau)
            head = f"<h3>{html.escape(bureau)}</h3>"
            self.detail.value = head + _frame_html(self._named(self.stations), "audit-dash-st")
            if self.mart is not None and bureau in self.mart.bureau_codes():
                months = [m for m in self.period.options if m <= str(self.period.value)][-12:]
                first, _ = parse_period(months[0])
                trend = business_indicators(self.mart, bureau, first, end)
                with self.trend, warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # font fallbacks must not reach the page
                    fig = indicator_trends(trend)
                    display(fig)
                    plt.close(fig)

        self.run(drill)
