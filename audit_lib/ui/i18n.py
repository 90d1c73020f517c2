"""Labels of the Voila apps in Chinese (default) and English.

The language is a setting: ``AUDIT_UI_LANG`` (``zh`` or ``en``) or the ``lang`` argument of
each app. Business terms keep their Chinese name beside the English one where both show.
"""

from __future__ import annotations

import os

from audit_lib.errors import ConfigError
from audit_lib.tasks.machine import ACTION_LABELS, STATE_LABELS
from audit_lib.tasks.policy import ROLE_LABELS
from audit_lib.tasks.service import OUTCOME_LABELS

LANGS = ("zh", "en")

LABELS: dict[str, tuple[str, str]] = {
    "review_title": ("稽查任务审核", "Audit task review"),
    "handling_title": ("稽查任务处理", "Audit task handling"),
    "dashboard_title": ("运营展示与稽查闭环", "Operations display and audit loop"),
    "user": ("当前用户", "Signed in as"),
    "bureau": ("供电局", "Bureau"),
    "state": ("状态", "State"),
    "time_limit": ("办结时限", "Time limit"),
    "signed_out": (
        "已退出登录。重新登录请使用您的登录链接。",
        "Signed out. Sign in again with your link.",
    ),
    "theme": ("稽查主题", "Theme"),
    "min_priority": ("最低优先级", "Min. priority"),
    "overdue": ("仅超期", "Overdue only"),
    "sort": ("排序", "Sort by"),
    "descending": ("降序", "Descending"),
    "all": ("全部", "All"),
    "prev": ("上一页", "Previous"),
    "next": ("下一页", "Next"),
    "page": ("第 {page}/{pages} 页，共 {total} 条", "Page {page}/{pages}, {total} tasks"),
    "open": ("打开任务", "Open task"),
    "task": ("任务", "Task"),
    "comment": ("意见", "Comment"),
    "findings": ("发现问题与原因", "Findings and reasons"),
    "history": ("处理记录（审计日志）", "History (audit log)"),
    "notebook": ("执行的分析笔记本", "Executed notebook"),
    "customer": ("用户", "Customer"),
    "no_task": ("请选择任务", "Select a task"),
    "no_tasks": ("没有符合条件的任务", "No task matches"),
    "done": ("已完成：{action}", "Done: {action}"),
    "outcome": ("处理结论", "Outcome"),
    "field_result": ("现场核查情况", "Field result"),
    "backbilled_kwh": ("追补电量 (kWh)", "Back-billed kWh"),
    "backbilled_money": ("追补电费 (元)", "Back-billed charges (元)"),
    "penalty": ("违约使用电费 (元)", "Penalty (元)"),
    "attachment": ("附件", "Attachments"),
    "attach": ("添加附件", "Attach"),
    "chart_kwh": ("日用电量 (kWh)", "Daily consumption (kWh)"),
    "chart_peers": ("同台区同类用户 10%–90%", "Peers in the area, 10–90%"),
    "chart_change": ("检测到的突变", "Detected change"),
    "chart_loss": ("台区线损率 (%)", "Area line loss (%)"),
    "chart_events": ("表计事件", "Meter events"),
    "chart_none": ("数据集市中无该用户的数据", "The mart holds no data for this customer"),
    "raised": ("生成任务", "Tasks raised"),
    "closed_on_time": ("按期办结", "Closed on time"),
    "overdue_now": ("当前超期", "Overdue now"),
    "hit_rate": ("查实率 (%)", "Hit rate (%)"),
    "recovered": ("追回金额 (元)", "Money recovered (元)"),
    "drill": ("下钻到供电所", "Drill down to stations"),
    "period": ("统计期间", "Period"),
    "refresh": ("刷新", "Refresh"),
    "landing": ("可用应用", "Apps you may open"),
    "error": ("错误", "Error"),
    "col_findings": (
        "主题|评分|严重程度|涉及金额 (元)|原因",
        "theme|score|severity|money (元)|reason",
    ),
    "col_history": ("序号|时间|操作人|操作|状态|意见", "#|time|actor|action|state|comment"),
}


def ui_lang(lang: str | None = None) -> str:
    """The language to use: ``lang``, else ``AUDIT_UI_LANG``, else Chinese."""
    value = (lang or os.environ.get("AUDIT_UI_LANG") or "zh").strip().lower()
    if value not in LANGS:
        raise ConfigError(f"unknown UI language {value!r}; known: {', '.join(LANGS)}")
    return value


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[0] if lang == "zh" else pair[1]


def label(key: str, lang: str = "zh", **values: object) -> str:
    """The label ``key`` in ``lang``, formatted with ``values``."""
    return _pick(LABELS[key], lang).format(**values)


def state_label(state: str, lang: str = "zh") -> str:
    """Display name of a task state."""
    return _pick(STATE_LABELS.get(state, (state, state)), lang)


def action_label(action: str, lang: str = "zh") -> str:
    """Display name of a task action."""
    return _pick(ACTION_LABELS.get(action, (action, action)), lang)


def outcome_label(kind: str, lang: str = "zh") -> str:
    """Display name of an outcome kind."""
    return _pick(OUTCOME_LABELS.get(kind, (kind, kind)), lang)


def role_label(role: str, lang: str = "zh") -> str:
    """Display name of a role."""
    return _pick(ROLE_LABELS.get(role, (role, role)), lang)
