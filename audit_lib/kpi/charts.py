"""Charts the notebooks and reports show (matplotlib, Chinese labels with English beside).

Each function takes a frame the library produced and returns a ``Figure``; notebooks only
display it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Iterator
from typing import ParamSpec

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.text import Text

from audit_lib.kpi.business import INDICATORS

CJK_FONTS = ("Noto Sans CJK SC", "WenQuanYi Zen Hei", "SimHei")
"""Fonts with Chinese glyphs, the first installed one is used (Debian: fonts-wqy-zenhei)."""
FALLBACK_FONT = "DejaVu Sans"  # matplotlib's own: Latin, digits, the minus sign
P = ParamSpec("P")


@functools.cache
def font_family() -> tuple[str, ...]:
    """The charts' fonts: the first installed of :data:`CJK_FONTS`, then :data:`FALLBACK_FONT`
    for the glyphs it lacks. Only installed fonts are named, so matplotlib never warns that
    one is missing (a warning would reach a report or an app page)."""
    from matplotlib import font_manager

    fonts = font_manager.fontManager.ttflist
    names = {f.name for f in fonts}
    cjk = next((f for f in CJK_FONTS if f in names), None)
    if cjk is None:
        return (FALLBACK_FONT,)
    own = [f for f in fonts if f.name == cjk]
    if not any(f.weight in (400, "normal", "regular") for f in own):
        # WenQuanYi Zen Hei ships one weight, 500: matplotlib renders it for "normal" text but
        # logs a warning each time, which reaches the page. Register that same file at 400.
        fonts.append(dataclasses.replace(own[0], weight=400))
    return (cjk, FALLBACK_FONT)


def has_chinese_font() -> bool:
    """Whether a font of :data:`CJK_FONTS` is installed (else labels fall back to English)."""
    return len(font_family()) > 1


FLAT = 1e-4
"""A value axis whose range is below this share of its level shows a flat series: float noise
(a line loss of 3.8461 % in every month, say) is not drawn as a trend of ±1e-6."""


def styled(fig: Figure) -> Figure:
    """``fig`` with the charts' fonts on every text it holds and every tick label it will
    draw, and a near-constant series drawn flat (see :data:`FLAT`), as matplotlib draws a
    constant one (±5 %): the figure's own settings, nothing of matplotlib's global state
    changes."""
    family = list(font_family())
    for ax in fig.axes:
        ax.tick_params(labelfontfamily=family)  # tick labels are made at draw time
        low, high = ax.get_ylim()
        level = abs(low + high) / 2
        if ax.get_yscale() == "linear" and 0 < high - low < FLAT * level:
            ax.set_ylim((low + high) / 2 - 0.05 * level, (low + high) / 2 + 0.05 * level)
    for text in fig.findobj(Text):
        text.set_fontfamily(family)
    return fig


@contextlib.contextmanager
def chart_fonts() -> Iterator[None]:
    """Within the block, new text takes the charts' fonts (so a layout is measured with them);
    the one setting is put back after. Not ``matplotlib.rc_context``: that puts back every
    setting, ``interactive`` too, which the notebook's inline backend turns on when the first
    figure of a kernel is drawn; put back, the next charts of the notebook were not shown."""
    saved = plt.rcParams["font.family"]
    plt.rcParams["font.family"] = list(font_family())
    try:
        yield
    finally:
        plt.rcParams["font.family"] = saved


def chart(draw: Callable[P, Figure]) -> Callable[P, Figure]:
    """Decorate a function that draws a figure: it draws with :func:`chart_fonts` and its figure
    is :func:`styled`. Importing a chart module changes no global matplotlib setting."""

    @functools.wraps(draw)
    def drawn(*args: P.args, **kwargs: P.kwargs) -> Figure:
        with chart_fonts():
            return styled(draw(*args, **kwargs))

    return drawn


@chart
def findings_by_theme(summary: pd.DataFrame) -> Figure:
    """Horizontal bars: findings per theme (from ``DetectionRun.summary()``)."""
    data = summary.sort_values("findings")
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(data) + 1))
    ax.barh(data["name_en"], data["findings"], color="#c0392b")
    ax.set_xlabel("findings / 发现数")
    ax.set_title("Findings per audit theme / 各稽查主题发现数")
    fig.tight_layout()
    return fig


@chart
def money_by_theme(findings: pd.DataFrame) -> Figure:
    """Money at risk per theme (元)."""
    data = findings.groupby("theme_id")["money_at_risk"].sum().sort_values()
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(data) + 1))
    ax.barh(data.index, data.to_numpy() / 1e4, color="#2c3e50")
    ax.set_xlabel("money at risk, 10k yuan / 涉及金额（万元）")
    ax.set_title("Money at risk per theme / 各主题涉及金额")
    fig.tight_layout()
    return fig


@chart
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
