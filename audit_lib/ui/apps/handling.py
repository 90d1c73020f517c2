"""The handler's app (稽查任务处理): field result, outcome, amounts, attachments, appeal.

Station and bureau handlers take a dispatched task (接单), record what they found on site
(the comment), the outcome (处理结论), back-billed kWh and charges (追补电量/电费) and the
penalty (违约使用电费), attach files, submit the result or the rectification, or appeal
(申诉, once, with reasons). The task service checks every rule.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from audit_lib.tasks.attachments import add_attachment
from audit_lib.tasks.service import OUTCOME_LABELS
from audit_lib.ui.apps.inboxapp import InboxApp
from audit_lib.ui.i18n import label, outcome_label

HANDLING_ACTIONS = (
    "accept",
    "submit_result",
    "start_rectification",
    "submit_rectification",
    "appeal",
)


class HandlingApp(InboxApp):
    """Inbox + task view + handling form for a station or bureau handler."""

    TITLE = "handling_title"
    ACTIONS = HANDLING_ACTIONS
    CSS = "audit-handling-app"

    def form_widgets(self) -> list[widgets.Widget]:
        """Outcome, amounts and attachment upload."""
        lang = self.lang
        self.outcome = widgets.Dropdown(
            options=[("—", None)] + [(outcome_label(k, lang), k) for k in OUTCOME_LABELS],
            description=label("outcome", lang),
        )
        self.kwh = widgets.BoundedFloatText(min=0, max=1e9, description="kWh")
        self.money = widgets.BoundedFloatText(min=0, max=1e10, description="元")
        self.penalty = widgets.BoundedFloatText(min=0, max=1e10, description="罚 / pen.")
        self.kwh.tooltip = label("backbilled_kwh", lang)
        self.money.tooltip = label("backbilled_money", lang)
        self.penalty.tooltip = label("penalty", lang)
        self.upload = widgets.FileUpload(multiple=False, description=label("attachment", lang))
        self.attach = widgets.Button(description=label("attach", lang))
        self.attach.on_click(self._on_attach_click)
        for w, css in ((self.outcome, "outcome"), (self.kwh, "kwh"), (self.money, "money"),
                       (self.penalty, "penalty"), (self.upload, "upload"),
                       (self.attach, "attach")):  # fmt: skip
            w.add_class(f"audit-form-{css}")
        self.comment.placeholder = label("field_result", lang)
        return [
            widgets.HTML(
                f"<b>{label('field_result', lang)}</b> · {label('backbilled_kwh', lang)} · "
                f"{label('backbilled_money', lang)} · {label('penalty', lang)}"
            ),
            widgets.HBox([self.outcome, self.kwh]),
            widgets.HBox([self.money, self.penalty]),
            widgets.HBox([self.upload, self.attach]),
        ]

    def action_kwargs(self, action: str) -> dict[str, Any]:
        """Outcome and amounts for the actions that record them."""
        if action not in {"submit_result", "submit_rectification"}:
            return {}
        fields = {"backbilled_kwh": self.kwh, "backbilled_money": self.money}
        fields["penalty"] = self.penalty
        amounts = {k: float(w.value) for k, w in fields.items() if w.value}
        return {"outcome": self.outcome.value, "amounts": amounts or None}

    def reset_form(self) -> None:
        """Clear comment, outcome and amounts."""
        super().reset_form()
        self.outcome.value = None
        self.kwh.value = self.money.value = self.penalty.value = 0.0

    def _on_attach_click(self, _button: widgets.Button) -> None:
        task = self.task
        if task is None or not self.upload.value:
            return

        def save() -> None:
            item = self.upload.value[0]
            with self.factory() as session:
                add_attachment(session, task["id"], str(item["name"]), bytes(item["content"]),
                               self.user)  # fmt: skip
                session.commit()
            self.upload.value = ()
            self.open_task(task["id"])
            self.say(label("done", self.lang, action=label("attach", self.lang)))

        self.run(save)
