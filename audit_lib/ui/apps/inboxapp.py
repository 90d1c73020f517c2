"""An app around a task inbox: filters, sorting, paging, task view, evidence chart, actions.

:class:`InboxApp` is the common body of the review and handling apps; a subclass names its
title, its action buttons, optional form widgets and the arguments each action takes. Every
handler calls :mod:`audit_lib.tasks` (through :mod:`audit_lib.tasks.queries`) and nothing else
decides: role, scope, four-eyes and comment rules are the task service's.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from sqlalchemy.orm import Session, sessionmaker

from audit_lib.tasks.machine import STATE_LABELS
from audit_lib.tasks.queries import SORTS, Page, TaskFilter, list_tasks, show_task, task_choices
from audit_lib.tasks.service import act, commit_or_conflict
from audit_lib.ui.apps.base import AppBase
from audit_lib.ui.apps.charts import EvidenceChart
from audit_lib.ui.apps.taskview import customer_card, task_html
from audit_lib.ui.i18n import action_label, label, state_label

if TYPE_CHECKING:
    from audit_lib.data.access import Mart


class InboxApp(AppBase):
    """Inbox + task view + action buttons; subclasses set :attr:`ACTIONS` and :attr:`TITLE`."""

    TITLE = "review_title"
    ACTIONS: tuple[str, ...] = ()
    CSS = "audit-inbox-app"

    def __init__(
        self,
        factory: sessionmaker[Session],
        user: str,
        *,
        mart: Mart | None = None,
        lang: str | None = None,
        page_size: int = 25,
        now: dt.datetime | None = None,
    ) -> None:
        super().__init__(factory, user, mart=mart, lang=lang)
        self.page_size = page_size
        self.now = now
        self.offset = 0
        self.page: Page | None = None
        self.task: dict[str, Any] | None = None
        self._quiet = False
        self._build()
        self.refresh()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        lang = self.lang
        with self.factory() as session:
            choices = task_choices(session, self.user)
        every = [(label("all", lang), None)]
        self.bureau_filter = widgets.Dropdown(
            options=every + [(b, b) for b in choices["bureaus"]], description=label("bureau", lang)
        )
        self.state_filter = widgets.Dropdown(
            options=every + [(state_label(s, lang), s) for s in STATE_LABELS],
            description=label("state", lang),
        )
        self.theme_filter = widgets.Dropdown(
            options=every + [(t, t) for t in choices["themes"]], description=label("theme", lang)
        )
        self.priority_filter = widgets.FloatText(value=0.0, description=label("min_priority", lang))
        self.overdue_filter = widgets.Checkbox(value=False, description=label("overdue", lang))
        self.sort_by = widgets.Dropdown(
            options=[(v[0] if lang == "zh" else v[1], k) for k, v in SORTS.items()],
            description=label("sort", lang),
        )
        self.descending = widgets.Checkbox(value=True, description=label("descending", lang))
        filters = [
            self.bureau_filter,
            self.state_filter,
            self.theme_filter,
            self.priority_filter,
            self.overdue_filter,
        ]
        filters += [self.sort_by, self.descending]
        for w, name in zip(filters, ("bureau", "state", "theme", "priority", "overdue", "sort",
                                     "descending"), strict=True):  # fmt: skip
            w.add_class(f"audit-filter-{name}")
            w.observe(self._on_filter_change, names="value")
        self.inbox = widgets.Select(options=[], rows=min(self.page_size, 15))
        self.inbox.layout.width = "100%"
        self.inbox.add_class("audit-inbox")
        self.inbox.observe(self._on_inbox_value, names="value")
        self.prev = widgets.Button(description=label("prev", lang))
        self.next = widgets.Button(description=label("next", lang))
        self.prev.add_class("audit-prev")
        self.next.add_class("audit-next")
        self.prev.on_click(self._on_prev_click)
        self.next.on_click(self._on_next_click)
        self.page_info = widgets.HTML()
        self.page_info.add_class("audit-page-info")
        self.detail = widgets.HTML(label("no_task", lang))
        self.detail.add_class("audit-task-view")
        self.chart = EvidenceChart(self.mart, lang)
        self.comment = widgets.Textarea(placeholder=label("comment", lang))
        self.comment.layout.width = "100%"
        self.comment.add_class("audit-comment")
        self.buttons: dict[str, widgets.Button] = {}
        for action in self.ACTIONS:
            button = widgets.Button(description=action_label(action, lang), disabled=True)
            button.add_class(f"audit-action-{action.replace('_', '-')}")
            button.on_click(lambda _b, a=action: self._on_action_click(a))
            self.buttons[action] = button
        self.view = widgets.VBox(
            [
                widgets.HTML(f"<h2>{label(self.TITLE, lang)}</h2>"),
                self.who,
                widgets.HBox(filters[:4]),
                widgets.HBox(filters[4:]),
                self.inbox,
                widgets.HBox([self.prev, self.next, self.page_info]),
                self.status,
                self.detail,
                self.chart.view,
                *self.form_widgets(),
                self.comment,
                widgets.HBox(list(self.buttons.values())),
            ]
        )
        self.view.add_class(self.CSS)

    def form_widgets(self) -> list[widgets.Widget]:
        """Widgets shown between the chart and the comment box (none by default)."""
        return []

    def action_kwargs(self, action: str) -> dict[str, Any]:
        """Extra arguments of :func:`audit_lib.tasks.service.act` for ``action``."""
        return {}

    def reset_form(self) -> None:
        """Clear the form after a successful action."""
        self.comment.value = ""

    # ------------------------------------------------------------------ state
    def current_filter(self) -> TaskFilter:
        """The inbox filter the widgets describe."""
        return TaskFilter(
            bureau=self.bureau_filter.value,
            state=self.state_filter.value,
            theme=self.theme_filter.value,
            min_priority=self.priority_filter.value or None,
            overdue=self.overdue_filter.value,
            sort=self.sort_by.value,
            descending=self.descending.value,
        )

    def refresh(self) -> None:
        """Reload the current page of the inbox."""
        self.run(self._load_page)

    def _load_page(self) -> None:
        with self.factory() as session:
            page = list_tasks(
                session,
                self.user,
                self.current_filter(),
                limit=self.page_size,
                offset=self.offset,
                now=self.now,
            )
        self.page = page
        keep = self.inbox.value
        ids = {r["id"] for r in page.rows}
        self._quiet = True  # new options must not open a task by themselves
        try:
            self.inbox.options = [(self._row_label(r), r["id"]) for r in page.rows]
            self.inbox.value = keep if keep in ids else None
        finally:
            self._quiet = False
        pages = max(1, math.ceil(page.total / self.page_size))
        number = self.offset // self.page_size + 1
        text = label("page", self.lang, page=number, pages=pages, total=page.total)
        self.page_info.value = text if page.total else label("no_tasks", self.lang)
        self.prev.disabled = self.offset == 0
        self.next.disabled = self.offset + self.page_size >= page.total

    def _row_label(self, row: dict[str, Any]) -> str:
        state = state_label(row["state"], self.lang)
        return (
            f"#{row['id']} · {row['bureau']} · {state} · {row['entity']} · {row['themes']} · "
            f"P={row['priority']:.1f} · ¥{row['money_at_risk']:.0f}"
        )

    def open_task(self, task_id: int) -> None:
        """Show task ``task_id`` (scope-checked by the task service)."""

        def load() -> None:
            with self.factory() as session:
                self.task = show_task(session, task_id, self.user)
            self._render_task(chart=True)

        self.run(load)

    def _render_task(self, *, chart: bool) -> None:
        task = self.task
        if task is None:
            self.detail.value = label("no_task", self.lang)
            for b in self.buttons.values():
                b.disabled = True
            self.chart.view.clear_output()
            return
        card = customer_card(self.mart, task, self.role)
        self.detail.value = task_html(task, card, self.lang)
        for action, button in self.buttons.items():
            button.disabled = action not in task["allowed_actions"]
        if chart:
            self.chart.show(task)

    # ------------------------------------------------------------------ handlers
    def _on_filter_change(self, _change: dict[str, Any]) -> None:
        self.offset = 0
        self.refresh()

    def _on_inbox_value(self, change: dict[str, Any]) -> None:
        if change["new"] is None or self._quiet:
            return
        self.open_task(int(change["new"]))

    def _on_prev_click(self, _button: widgets.Button) -> None:
        self.offset = max(0, self.offset - self.page_size)
        self.refresh()

    def _on_next_click(self, _button: widgets.Button) -> None:
        if self.page is not None and self.offset + self.page_size < self.page.total:
            self.offset += self.page_size
            self.refresh()

    def _on_action_click(self, action: str) -> None:
        task = self.task
        if task is None:
            return

        def perform() -> None:
            with self.factory() as session:
                act(
                    session,
                    task["id"],
                    action,
                    self.user,
                    comment=self.comment.value.strip() or None,
                    expected_version=task["version"],
                    **self.action_kwargs(action),
                )
                commit_or_conflict(session)
                self.task = show_task(session, task["id"], self.user)
            self.reset_form()
            self._render_task(chart=False)
            self._load_page()
            self.say(label("done", self.lang, action=action_label(action, self.lang)))

        self.run(perform)
