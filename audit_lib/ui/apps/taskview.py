"""The task view as HTML: fields, findings with their reasons, outcome, history, notebook.

Everything shown is escaped; personal data of the customer are masked for the viewer's role.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from audit_lib.ui.apps.masking import mask_frame
from audit_lib.ui.i18n import action_label, label, outcome_label, state_label

if TYPE_CHECKING:
    from audit_lib.data.access import Mart

EVIDENCE_URL = "audit/evidence/{task_id}"  # served by audit serve, scope-checked
ATTACHMENT_URL = "audit/attachment/{task_id}/{sha256}"  # the same, from the attachment store


def customer_card(mart: Mart | None, task: dict[str, Any], role: str) -> dict[str, str]:
    """Name, phone and class of the task's customer (masked for ``role``), if in the mart."""
    if mart is None or task.get("entity_kind") != "customer":
        return {}
    rows = mart.sql(
        "SELECT name, phone, id_no, cust_class, area_id FROM customers "
        "WHERE bureau = ? AND cons_no = ? LIMIT 1",
        [task["bureau"], task["entity"]],
    )
    if not len(rows):
        return {}
    shown = mask_frame(rows, role).iloc[0]
    return {str(k): "" if pd.isna(v) else str(v) for k, v in shown.items()}


def _table(head: list[str], rows: list[list[Any]], cls: str) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table class='{cls}' border='1' cellpadding='3'><tr>{th}</tr>{body}</table>"


def _detail(text: str) -> str:
    try:
        data = json.loads(text or "{}")
    except json.JSONDecodeError:
        return text
    return str(data.get("comment") or "")


def task_html(task: dict[str, Any], customer: dict[str, str], lang: str = "zh") -> str:
    """The HTML of one task view (a :func:`audit_lib.tasks.queries.show_task` dict)."""
    zh = lang == "zh"
    title = task["title_zh"] if zh else task.get("title_en") or task["title_zh"]
    head = (
        f"<h3>{label('task', lang)} #{task['id']} · {html.escape(str(title))}</h3>"
        f"<p>{label('state', lang)}: <b class='audit-task-state'>"
        f"{html.escape(state_label(task['state'], lang))}</b> · {label('bureau', lang)} "
        f"{html.escape(str(task['bureau']))} · {html.escape(str(task['period_start']))} – "
        f"{html.escape(str(task['period_end']))} · P={float(task['priority']):.1f}"
        + (
            f" · {label('time_limit', lang)} {html.escape(str(task['deadline_at'])[:10])}"
            if task.get("deadline_at")
            else ""
        )
        + "</p>"
    )
    if customer:
        head += (
            f"<p>{label('customer', lang)} {html.escape(str(task['entity']))}: "
            f"{html.escape(customer.get('name', ''))} {html.escape(customer.get('phone', ''))}"
            f" · {html.escape(customer.get('cust_class', ''))} · "
            f"{html.escape(customer.get('area_id', ''))}</p>"
        )
    reason = "reason_zh" if zh else "reason_en"
    findings = _table(
        label("col_findings", lang).split("|"),
        [
            [
                f["theme_id"],
                f"{f['score']:.2f}",
                f["severity"],
                f"{f['money_at_risk'] or 0:,.2f}",
                f[reason],
            ]
            for f in task["findings"]
        ],
        "audit-findings",
    )
    outcome = ""
    if task.get("outcome"):
        o = task["outcome"]
        outcome = (
            f"<p>{label('outcome', lang)}: {html.escape(outcome_label(o['kind'], lang))} · "
            f"{o['backbilled_kwh']} kWh · {o['backbilled_money']} 元 · {o['penalty']} 元</p>"
        )
    history = _table(
        label("col_history", lang).split("|"),
        [
            [
                e["seq"] or "",
                e["at"][:19],
                e["actor"],
                action_label(e["action"], lang),
                state_label(e["after"] or "", lang),
                _detail(e["detail"]),
            ]
            for e in task["history"]
        ],
        "audit-history",
    )
    base = os.environ.get("VOILA_BASE_URL", "/").rstrip("/") + "/"
    files = "".join(
        f"<li><a class='audit-attachment-link' target='_blank' href='"
        f"{html.escape(base + ATTACHMENT_URL.format(task_id=task['id'], sha256=a['sha256']))}'>"
        f"{html.escape(Path(a['path']).suffix.lstrip('.').upper())} {a['size'] / 1024:,.0f} KB · "
        f"{html.escape(a['added_by'])} · {html.escape(a['sha256'][:12])}</a></li>"
        for a in task.get("attachments", [])
    )
    if files:
        files = f"<h4>{label('attachment', lang)}</h4><ul class='audit-attachments'>{files}</ul>"
    link = ""
    if task.get("notebook"):
        url = base + EVIDENCE_URL.format(task_id=task["id"])
        link = (
            f"<p><a class='audit-notebook-link' href='{html.escape(url)}' target='_blank'>"
            f"{label('notebook', lang)}: {html.escape(str(task['notebook']))}</a></p>"
        )
    return (
        f"{head}<h4>{label('findings', lang)}</h4>{findings}{outcome}{files}{link}"
        f"<h4>{label('history', lang)}</h4>{history}"
    )
