"""Charts of the analyst notebooks (matplotlib, Chinese labels with English beside).

Each function takes what :mod:`audit_lib.workflows.analysis` returns and gives a ``Figure``;
notebooks only display it. An empty input gives a figure that says so, not an error.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.dates import date2num
from matplotlib.figure import Figure
from statsmodels.tsa.seasonal import STL

from audit_lib.data.balance import area_balance
from audit_lib.data.schema import THEFT_KINDS
from audit_lib.detect.run import DetectionRun
from audit_lib.detect.scoring.metrics import ranked_labels
from audit_lib.kpi.charts import chart
from audit_lib.workflows.analysis import customer_evidence, customer_series, pick_customer

RED, BLUE, GREY = "#c0392b", "#2980b9", "#95a5a6"


@chart
def _empty(title: str) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 1.5))
    ax.text(0.5, 0.5, title, ha="center", va="center")
    ax.set_axis_off()
    return fig


@chart
def evidence_chart(run: DetectionRun, cons_no: str = "") -> Figure:
    """One customer's daily kWh, its STL trend, the change day and the levels either side
    (default customer: the highest theft score)."""
    who = pick_customer(run, cons_no)
    series = customer_series(run, who)
    ev = customer_evidence(run, who).iloc[0]
    trend = STL(series.interpolate(limit_direction="both").to_numpy(), period=7, robust=True)
    fig, ax = plt.subplots(figsize=(9, 3.2))
    ax.plot(series.index, series.to_numpy(), color=GREY, lw=0.8, label="daily kWh / 日电量")
    ax.plot(series.index, trend.fit().trend, color=BLUE, lw=2, label="trend / 趋势")
    change = pd.Timestamp(ev["change_day"])
    ax.axvline(float(date2num(change)), color=RED, ls="--", label=f"change / 突变 {change.date()}")
    ax.hlines([ev["level_before"], ev["level_after"]], [series.index[0], change],
              [change, series.index[-1]], colors=RED, lw=1.5)  # fmt: skip
    ax.set_title(f"{who}: {ev['change_pct']:+.0f}% (p={ev['p_value']:.1g}) / 用户电量与突变")
    ax.set_ylabel("kWh")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


@chart
def peer_chart(run: DetectionRun, cons_no: str = "") -> Figure:
    """One customer's weekly mean kWh against the median and 25–75 % band of the customers of
    the same class in the bureau (drop vs peers / 与同类用户对比)."""
    who = pick_customer(run, cons_no)
    ctx = run.context
    assert ctx is not None
    cls = ctx.customers["cust_class"].to_numpy()
    row = pd.Index(ctx.customers["cons_no"].astype(str)).get_loc(who)
    peers = np.flatnonzero(cls == cls[row])
    values = np.where(ctx.open_mask[peers], ctx.matrix.values[peers], np.nan)
    weekly = pd.DataFrame(values.T, index=ctx.matrix.dates).resample("W").mean()
    band = weekly.quantile([0.25, 0.5, 0.75], axis=1).T
    own = customer_series(run, who).resample("W").mean()
    fig, ax = plt.subplots(figsize=(9, 3.2))
    ax.fill_between(band.index, band[0.25], band[0.75], color=GREY, alpha=0.4,
                    label=f"peers 25–75% / 同类用户 ({len(peers)})")  # fmt: skip
    ax.plot(band.index, band[0.5], color=GREY, lw=1.5, label="peer median / 同类中位数")
    ax.plot(own.index, own.to_numpy(), color=RED, lw=2, label=f"{who}")
    ax.set_title(f"{who} vs class {cls[row]} peers / 与同类用户对比 (weekly mean kWh)")
    ax.set_ylabel("kWh/day")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


@chart
def loss_rate_chart(table: pd.DataFrame, limits: Mapping[str, float | int | str]) -> Figure:
    """Distribution of the monthly loss rates of the areas, with the class limits
    (:func:`~audit_lib.workflows.analysis.loss_limits`, fractions) drawn in percent."""
    high_pct = 100 * float(limits["high_loss"])
    negative_pct = 100 * float(limits["negative_loss"])
    rates = 100 * table["loss_rate"].replace([np.inf, -np.inf], np.nan).dropna()
    if rates.empty:
        return _empty("no computable area-month / 无可计算的台区月")
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.hist(rates.clip(-20, 40), bins=60, color=BLUE)
    ax.axvline(high_pct, color=RED, ls="--", label=f"high / 高损 {high_pct:g}%")
    ax.axvline(negative_pct, color="#8e44ad", ls="--", label=f"negative / 负损 {negative_pct:g}%")
    ax.set_xlabel("monthly loss rate % (clipped to -20..40) / 月线损率")
    ax.set_ylabel("area-months / 台区月数")
    ax.set_title("Station-area loss rates / 台区线损率分布")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@chart
def area_loss_chart(run: DetectionRun, table: pd.DataFrame, area_id: str = "") -> Figure:
    """Daily loss rate of one station area (default: the worst of ``table``) with its
    customers' read completeness."""
    if table.empty:
        return _empty("no station area / 无台区")
    area = area_id or str(table["area_id"].iloc[0])
    ctx = run.context
    assert ctx is not None
    balance = area_balance(ctx)
    rows = np.flatnonzero(balance.area_id == area)
    if not len(rows):
        return _empty(f"area {area} not found / 未找到台区")
    fig, ax = plt.subplots(figsize=(9, 3.2))
    ax.plot(balance.dates, 100 * balance.loss_rate[rows[0]], color=BLUE, lw=1,
            label="daily loss rate % / 日线损率")  # fmt: skip
    ax2 = ax.twinx()
    ax2.plot(balance.dates, 100 * balance.completeness[rows[0]], color=GREY, lw=0.8,
             label="read completeness % / 采集完整率")  # fmt: skip
    ax2.set_ylim(0, 105)
    ax.axhline(0, color="black", lw=0.5)
    ax.set_title(f"Station area {area} / 台区日线损")
    ax.set_ylabel("loss %")
    fig.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


@chart
def dq_chart(hits: pd.DataFrame) -> Figure:
    """Data-quality hits per check and month (stacked bars)."""
    if hits.empty:
        return _empty("no data-quality hit / 无数据质量问题")
    month = pd.to_datetime(hits["date"]).dt.strftime("%Y-%m").fillna(hits["month"]).fillna("—")
    counts = hits.assign(m=month).pivot_table(index="m", columns="check", values="entity",
                                              aggfunc="count", fill_value=0)  # fmt: skip
    fig, ax = plt.subplots(figsize=(9, 3.2))
    counts.plot.bar(stacked=True, ax=ax, width=0.8)
    ax.set_xlabel("month / 月份")
    ax.set_ylabel("hits / 问题数")
    ax.set_title("Data-quality hits per check / 各核查项问题数")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


@chart
def quality_chart(scores: pd.DataFrame) -> Figure:
    """Precision and recall per theme (from ``theme_quality``)."""
    if scores.empty:
        return _empty("no truth table / 无真值表")
    data = scores.set_index("theme")[["precision", "recall"]].fillna(0.0)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(data) + 1))
    data.plot.barh(ax=ax, color=[BLUE, RED])
    ax.set_xlim(0, 1.05)
    ax.set_xlabel("precision / 精确率, recall / 召回率")
    ax.set_title("Theme quality against the truth table / 各主题对照真值")
    fig.tight_layout()
    return fig


@chart
def precision_curve(run: DetectionRun, truth: pd.DataFrame, max_k: int = 200) -> Figure:
    """Precision@k of the theft score for k = 1..``max_k`` (and the share of thieves)."""
    scores = run.extras.get("theft_scores")
    if truth.empty or scores is None or scores.empty:
        return _empty("no truth table or theft score / 无真值表或窃电评分")
    thieves = set(truth.loc[truth["kind"].isin(THEFT_KINDS), "entity"])
    y = scores["cons_no"].isin(thieves).to_numpy(dtype=int)
    s = scores["score"].to_numpy(dtype=float)
    ks = np.arange(1, min(max_k, len(y)) + 1)
    hits = np.cumsum(ranked_labels(y, s))[: len(ks)]
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(ks, hits / ks, color=RED, label="precision@k")
    ax.axhline(y.mean(), color=GREY, ls="--", label=f"base rate / 基准 {y.mean():.3f}")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("k (top customers / 前k户)")
    ax.set_title("Theft score: precision@k / 窃电评分前k户精确率")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
