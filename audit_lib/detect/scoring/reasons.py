"""One-line reasons (Chinese / English) for the theft-suspicion score, built vectorised.

For each customer the *strongest* evidence is the explainable feature that sits furthest
from the population in the suspicious direction (robust z-score: median and scaled MAD of
all scored customers). Its template is filled with the customer's own numbers, e.g.
``近30日日均电量较前90日下降72% / daily average down 72% vs previous 90 days``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from audit_lib.detect.kernels.rowstats import nanmedian_columns

# feature → direction that is suspicious (+1: high, -1: low, 0: either way)
EXPLAINABLE: dict[str, int] = {
    "drop_recent": -1,
    "step_drop": -1,
    "drop_vs_peers": -1,
    "level_vs_peers": -1,
    "zero_run": +1,
    "zero_change": +1,
    "vol_change": 0,
    "weekly_change": -1,
    "peak_change": -1,
    "ceiling_change": +1,
}

# smallest spread used for a feature's z-score, so a feature that is 0 for most customers
# (missing or zero days) does not win on a tiny deviation
MIN_SPREAD: dict[str, float] = {
    "zero_run": 0.03, "zero_change": 0.1, "weekly_change": 0.05,
    "level_vs_peers": 0.5, "drop_vs_peers": 0.3, "ceiling_change": 0.05,
}  # fmt: skip

REASON_ALL_ZERO = "全期电量为零（另由零电量主题处理） / zero kWh on every observed day (see the zero-consumption theme)"
REASON_TOO_FEW = "有效读数不足{n}日，未评分 / fewer than {n} observed days, not scored"
REASON_NONE = "无明显异常特征 / no single feature stands out"
NOTE_ABSURD = (
    "；{n}日读数异常偏大（疑数据错误），未计入评分",
    "; {n} absurd daily reading(s) (data error?) left out of the score",
)


def with_note(reasons: np.ndarray, note: tuple[str, str], counts: np.ndarray) -> np.ndarray:
    """``中文 / English`` reasons with ``note`` (its ``{n}`` filled from ``counts``) added to
    each half."""
    parts = pd.Series(reasons, dtype=object).str.split(" / ", n=1, expand=True)
    zh = parts[0]
    en = parts[1].fillna(parts[0]) if parts.shape[1] > 1 else parts[0]
    n = pd.Series(counts).astype(str)
    zh_note, en_note = (pd.Series(part.split("{n}")) for part in note)
    return np.asarray(
        zh + zh_note[0] + n + zh_note[1] + " / " + en + en_note[0] + n + en_note[1], dtype=object
    )


def _pct(values: pd.Series) -> pd.Series:
    return (100.0 * values).round().astype("Int64").astype(str)


def _down(log_ratio: pd.Series) -> pd.Series:
    return _pct(1.0 - np.exp(log_ratio.clip(upper=0.0)))


Template = Callable[[pd.DataFrame, int, int, int], pd.Series]

TEMPLATES: dict[str, Template] = {
    "drop_recent": lambda f, r, h, d: (
        f"近{r}日日均电量较前{h}日下降" + _down(f["drop_recent"]) + "%（季节调整后） / daily "
        "average down " + _down(f["drop_recent"]) + f"% vs previous {h} days (season-adjusted)"
    ),
    "step_drop": lambda f, r, h, d: (
        f["step_day_zh"]
        + "起电量阶跃下降"
        + _down(f["step_drop"])
        + "% / step drop of "
        + _down(f["step_drop"])
        + "% from "
        + f["step_day_en"]
    ),
    "drop_vs_peers": lambda f, r, h, d: (
        "电量变化较同类用户中位数低"
        + _down(f["drop_vs_peers"])
        + "% / consumption fell "
        + _down(f["drop_vs_peers"])
        + "% more than the peer median"
    ),
    "level_vs_peers": lambda f, r, h, d: (
        "日均电量仅为同类用户中位数的" + _pct(np.exp(f["level_vs_peers"])) + "% / daily average "
        "only " + _pct(np.exp(f["level_vs_peers"])) + "% of the peer median"
    ),
    "zero_run": lambda f, r, h, d: (
        "连续"
        + (f["zero_run"] * d).round().astype("Int64").astype(str)
        + "日零电量 / "
        + (f["zero_run"] * d).round().astype("Int64").astype(str)
        + " consecutive zero-kWh days"
    ),
    "zero_change": lambda f, r, h, d: (
        "后半期零电量天数占比上升" + _pct(f["zero_change"]) + "个百分点 / share of zero-kWh days "
        "up " + _pct(f["zero_change"]) + " points in the second half"
    ),
    "vol_change": lambda f, r, h, d: (
        "日电量波动突变（" + _pct(np.exp(f["vol_change"]) - 1.0) + "%） / day-to-day "
        "variation changed by " + _pct(np.exp(f["vol_change"]) - 1.0) + "%"
    ),
    "weekly_change": lambda f, r, h, d: (
        "周用电规律减弱"
        + _pct(-f["weekly_change"])
        + "个百分点 / weekly pattern weaker by "
        + _pct(-f["weekly_change"])
        + " points"
    ),
    "peak_change": lambda f, r, h, d: (
        "用电高峰被削平（峰值/中位数比下降" + _down(f["peak_change"]) + "%） / peaks flattened "
        "(p95/median down " + _down(f["peak_change"]) + "%)"
    ),
    "ceiling_change": lambda f, r, h, d: (
        "后半期电量多日顶格持平（封顶日占比增加" + _pct(f["ceiling_change"]) + "个百分点，疑限流/"
        "卡表） / capped: share of days at the late maximum up "
        + _pct(f["ceiling_change"])
        + " points (current limiter or clamp?)"
    ),
}


def strongest_feature(features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Name and robust z-score of each row's most suspicious explainable feature."""
    cols = [c for c in EXPLAINABLE if c in features.columns]
    f = features[cols].to_numpy(dtype=np.float64)
    with np.errstate(all="ignore"):
        med = nanmedian_columns(f)  # np.nanmedian's values, one compiled pass
        mad = 1.4826 * nanmedian_columns(np.abs(f - med))
        spread = np.where(mad > 1e-9, mad, np.nanstd(f, axis=0) + 1e-9)
        floor = np.array([MIN_SPREAD.get(c, 1e-9) for c in cols])
        spread = np.maximum(spread, floor)
        z = (f - med) / spread
    sign = np.array([EXPLAINABLE[c] for c in cols], dtype=np.float64)
    directed = np.where(sign == 0, np.abs(z), z * sign)
    directed = np.where(np.isfinite(directed), directed, -np.inf)
    best = np.argmax(directed, axis=1)
    return np.asarray(cols)[best], directed[np.arange(len(f)), best]


def build_reasons(
    features: pd.DataFrame,
    *,
    recent: int,
    history: int,
    days: int,
    dates: pd.DatetimeIndex | None = None,
    min_z: float = 2.0,
) -> np.ndarray:
    """One reason line per row of ``features`` (all rows are scored customers).

    ``dates`` (one per matrix column) lets a reason name the calendar day of a change
    instead of its position.
    """
    name, z = strongest_feature(features)
    day = np.clip(np.nan_to_num(features["step_pos"].to_numpy() * days).round(), 1, days)
    day = day.astype(np.int64)
    if dates is not None and len(dates) == days:
        label = pd.Series(np.asarray(dates.strftime("%Y-%m-%d"))[day - 1], index=features.index)
        features = features.assign(step_day_zh=label, step_day_en=label)
    else:
        label = pd.Series(day, index=features.index).astype(str)
        features = features.assign(step_day_zh="第" + label + "日", step_day_en="day " + label)
    out = pd.Series(REASON_NONE, index=features.index, dtype=object)
    for feat, template in TEMPLATES.items():
        mask = (name == feat) & (z >= min_z)
        if mask.any():
            out[mask] = template(features.loc[mask], recent, history, days).to_numpy()
    return out.to_numpy(dtype=object)
