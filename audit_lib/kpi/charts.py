"""Charts the notebooks and reports show (matplotlib, Chinese labels with English beside).

Each function takes a frame the library produced and returns a ``Figure``; notebooks only
display it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from audit_lib.kpi.business import INDICATORS

# CJK fonts are not always installed: fall back silently to the English label.
plt.rcParams["font.sans-serif"] = [
    "Noto Sans CJK SC",
    "WenQuanYi Zen Hei",
    "SimHei",
    "DejaVu Sans",
]
plt.rcParams["axes.unicode_minus"] = False


def findings_by_theme(summary: pd.DataFrame) -> Figure:
    """Horizontal bars: findings per theme (from ``DetectionRun.summary()``)."""
    data = summary.sort_values("findings")
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(data) + 1))
    ax.barh(data["name_en"], data["findings"], color="#c0392b")
    ax.set_xlabel("findings / 发现数")
    ax.set_title("Findings per audit theme / 各稽查主题发现数")
    fig.tight_layout()
    return fig


def money_by_theme(findings: pd.DataFrame) -> Figure:
    """Money at risk per theme (元)."""
    data = findings.groupby("theme_id")["money_at_risk"].sum().sort_values()
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(data) + 1))
    ax.barh(data.index, data.to_numpy() / 1e4, color="#2c3e50")
    ax.set_xlabel("money at risk, 10k yuan / 涉及金额（万元）")
    ax.set_title("Money at risk per theme / 各主题涉及金额")
    fig.tight_layout()
    return fig


def indicator_trends(indicators: pd.DataFrame, names: list[str] | None = None) -> Figure:
    """Small multiples of monthly indicators (from ``business_indicators``)."""
    names = names or [k for k in INDICATORS if k != "customers"]
    cols = 4
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), names, strict=False):
        ax.plot(indicators["month"], indicators[name], marker="o", color="#2980b9")
        ax.set_title(f"{INDICATORS[name][1]} ({INDICATORS[name][2]})", fontsize=9)
        ax.tick_params(axis="x", labelrotation=90, labelsize=7)
    for ax in axes.ravel()[len(names) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig
