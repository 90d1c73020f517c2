"""Themes over the customers × days matrix: zero consumption, abrupt drop, low against
peers, and meter alarms that coincide with a drop.

All rules are whole-matrix numpy; pandas only formats the hits.
"""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd

from audit_lib.detect.context import DetectionContext
from audit_lib.detect.findings import evidence_column
from audit_lib.detect.kernels.matrix_ops import (
    best_window_drop,
    by_threads,
    deseasonalise,
    nanmean_rows,
    window_means,
)
from audit_lib.themes.catalogue import Theme


def _period_cols(ctx: DetectionContext) -> np.ndarray:
    dates = ctx.matrix.dates
    return np.asarray((dates >= pd.Timestamp(ctx.start)) & (dates <= pd.Timestamp(ctx.end)))


def _base(ctx: DetectionContext, rows: np.ndarray) -> pd.DataFrame:
    cust = ctx.customers.iloc[rows]
    return pd.DataFrame(
        {
            "entity": cust["cons_no"].to_numpy(),
            "station_id": cust["station_id"].to_numpy(),
            "area_id": cust["area_id"].to_numpy(),
        }
    )


def _active(ctx: DetectionContext) -> np.ndarray:
    return np.asarray(ctx.customers["status"] == "active")


def zero_runs(ctx: DetectionContext, theme: Theme) -> tuple[np.ndarray, ...]:
    """Longest run of exactly zero kWh in the period of every customer, while open.

    Returns
    -------
    tuple of arrays
        ``(hit, length, end, level)``: whether the zero-consumption theme (its parameters in
        ``theme``) flags the customer, the run length, its last period column and the mean
        kWh/day on the customer's non-zero open days (0 if none).
    """
    min_days = int(theme.param("min_zero_days"))
    min_level = theme.param("min_history_kwh_per_day")
    period = np.flatnonzero(_period_cols(ctx))
    values, opened = ctx.matrix.values, ctx.open_mask
    lo, hi = (int(period[0]), int(period[-1]) + 1) if len(period) else (0, 0)

    def chunk(s: slice) -> tuple[np.ndarray, ...]:
        return _zero_runs(values[s], opened[s], lo, hi)

    length, end, level = by_threads(len(values), chunk)
    level = np.where(np.isfinite(level), level, 0.0)
    hit = _active(ctx) & (length >= min_days) & ((level >= min_level) | (level == 0))
    return hit, length, end, level


@numba.njit(cache=True, nogil=True)
def _zero_runs(
    x: np.ndarray, opened: np.ndarray, lo: int, hi: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Per row, in one pass: the longest run of exact zeros on open days within the columns
    ``lo``..``hi - 1`` (a positive or closed day ends it, a missing one neither counts nor
    ends it), the column (from ``lo``) where it ends, and the mean kWh of the open positive
    days (NaN without any) — ``matrix_ops.runs`` and ``nanmean_rows`` fused."""
    rows, days = x.shape
    length = np.zeros(rows, dtype=np.int64)
    end = np.zeros(rows, dtype=np.int64)
    level = np.full(rows, np.nan)
    for i in range(rows):
        run, best, at = 0, 0, 0
        total, n = 0.0, 0
        for j in range(days):
            v, o = x[i, j], opened[i, j]
            if o and v > 0:
                total += v
                n += 1
            if lo <= j < hi:
                if v == 0 and o:
                    run += 1
                if v > 0 or not o:
                    run = 0
                if run > best:
                    best, at = run, j - lo
        length[i], end[i] = best, at
        if n > 0:
            level[i] = total / n
    return length, end, level


def detect_zero_consumption(ctx: DetectionContext, theme: Theme) -> pd.DataFrame:
    """Runs of exactly zero daily kWh of at least ``min_zero_days`` while the account is open.

    Standby consumption of an empty dwelling is small but not zero; a meter that reads zero
    for weeks on an open account is stopped, bypassed or mis-recorded.
    """
    hit, length, end, level = zero_runs(ctx, theme)
    cols = _period_cols(ctx)
    rows = np.flatnonzero(hit)
    if not len(rows):
        return pd.DataFrame()
    dates = ctx.matrix.dates[cols]
    last = dates[end[rows]]
    first = dates[end[rows] - length[rows] + 1]
    out = _base(ctx, rows)
    n_days = length[rows]
    out["score"] = n_days / cols.sum() + np.minimum(level[rows], 100) / 1000
    out["kwh_at_risk"] = level[rows] * n_days
    out["money_at_risk"] = out["kwh_at_risk"] * ctx.prices.iloc[rows].to_numpy()
    lvl = pd.Series(level[rows]).round(1).astype(str)
    never = level[rows] == 0
    days = pd.Series(n_days).astype(str)
    out["reason_zh"] = np.where(
        never, "运行户连续" + days + "天零电量（无用电记录）",
        "运行户连续" + days + "天零电量（此前日均" + lvl + "kWh）",
    )  # fmt: skip
    out["reason_en"] = np.where(
        never, "zero consumption for " + days + " days on an active account (never used)",
        "zero consumption for " + days + " days on an active account (before: " + lvl
        + " kWh/day)",
    )  # fmt: skip
    out["evidence"] = evidence_column(
        [
            {
                "zero_days": int(n),
                "from": str(a.date()),
                "to": str(b.date()),
                "kwh_per_day": float(v),
            }
            for n, a, b, v in zip(n_days, first, last, level[rows], strict=True)
        ]
    )
    return out


def detect_consumption_drop(ctx: DetectionContext, theme: Theme) -> pd.DataFrame:
    """Largest drop of a ``recent_days`` window against the ``history_days`` before it, after
    dividing out the customer's class-wide seasonal curve (电量突变)."""
    recent = int(theme.param("recent_days"))
    history = int(theme.param("history_days"))
    min_drop = theme.param("min_drop")
    min_level = theme.param("min_history_kwh_per_day")
    values = ctx.matrix.values
    groups = ctx.class_codes
    dates = ctx.matrix.dates
    first_col = max(int(dates.searchsorted(pd.Timestamp(ctx.start))), history)

    def chunk(s: slice) -> tuple[np.ndarray, ...]:
        x = np.where(ctx.open_mask[s], values[s], np.nan)
        shape, level = deseasonalise(x, groups[s])
        drop, at, before = best_window_drop(shape, recent, history, first_col)
        return drop, at, before * level

    drop, at, before_kwh = by_threads(len(values), chunk)
    hit = _active(ctx) & (drop >= min_drop) & (before_kwh >= min_level)
    rows = np.flatnonzero(hit)
    if not len(rows):
        return pd.DataFrame()
    out = _base(ctx, rows)
    d = drop[rows]
    start = dates[at[rows].astype(int)]
    out["score"] = d
    out["kwh_at_risk"] = d * before_kwh[rows] * recent
    out["money_at_risk"] = out["kwh_at_risk"] * ctx.prices.iloc[rows].to_numpy()
    pct = pd.Series(np.round(d * 100)).astype(int).astype(str)
    when = pd.Series(start.strftime("%Y-%m-%d"))
    out["reason_zh"] = (
        "自" + when + f"起{recent}日日均电量较前{history}日下降" + pct + "%（已扣除季节因素）"
    )
    out["reason_en"] = (
        f"daily average of the {recent} days from "
        + when
        + " down "
        + pct
        + f"% vs the previous {history} days (seasonally adjusted)"
    )
    out["evidence"] = evidence_column(
        [
            {"drop": float(v), "from": str(s.date()), "kwh_per_day_before": float(k)}
            for v, s, k in zip(d, start, before_kwh[rows], strict=True)
        ]
    )
    return out


def detect_peer_low(ctx: DetectionContext, theme: Theme) -> pd.DataFrame:
    """Customers whose mean kWh over the last ``window_days`` is below ``max_ratio_to_peers``
    × the median of peers of the same class, industry and capacity band."""
    window = int(theme.param("window_days"))
    max_ratio = theme.param("max_ratio_to_peers")
    min_peers = int(theme.param("min_peers"))
    last = np.flatnonzero(_period_cols(ctx))[-window:]
    cols = slice(int(last[0]), int(last[-1]) + 1) if len(last) else slice(0, 0)  # consecutive
    opened = ctx.open_mask[:, cols]
    x = np.where(opened, ctx.matrix.values[:, cols], np.float32(np.nan))
    open_share = opened.mean(axis=1)
    mean = nanmean_rows(x)
    cust = ctx.customers
    band = np.floor(np.log2(np.maximum(cust["capacity_kva"].to_numpy(dtype=float), 1.0)))
    peers = pd.DataFrame(
        {"cls": cust["cust_class"], "ind": cust["industry"], "band": band, "mean": mean}
    )
    grouped = peers.groupby(["cls", "ind", "band"])["mean"]
    median = grouped.transform("median").to_numpy()
    size = grouped.transform("count").to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = mean / median
    hit = _active(ctx) & (open_share == 1) & (size >= min_peers) & (ratio < max_ratio)
    hit &= np.isfinite(ratio) & (median > 0)
    rows = np.flatnonzero(hit)
    if not len(rows):
        return pd.DataFrame()
    out = _base(ctx, rows)
    r = ratio[rows]
    out["score"] = 1.0 - r
    out["kwh_at_risk"] = (median[rows] - mean[rows]) * window
    out["money_at_risk"] = out["kwh_at_risk"] * ctx.prices.iloc[rows].to_numpy()
    pct = pd.Series(np.round(r * 100)).astype(int).astype(str)
    out["reason_zh"] = f"近{window}日日均电量仅为同类用户中位数的" + pct + "%"
    out["reason_en"] = (
        f"daily average of the last {window} days is " + pct + "% of similar customers'"
    )
    out["evidence"] = evidence_column(
        [
            {"kwh_per_day": float(m), "peer_median": float(p), "peers": int(n)}
            for m, p, n in zip(mean[rows], median[rows], size[rows], strict=True)
        ]
    )
    return out


def detect_meter_events(ctx: DetectionContext, theme: Theme) -> pd.DataFrame:
    """Meter alarms (ERC27/28/29/30, cover opened) in the period followed by a drop of the
    customer's seasonally adjusted consumption (after vs before, ``window_days`` each)."""
    codes = str(theme.params["codes"]).split(",")
    window = int(theme.param("window_days"))
    events = ctx.meter_events
    events = events[events["code"].isin(codes)]
    row_of = pd.Index(ctx.customers["cons_no"])
    rows = row_of.get_indexer(events["cons_no"])
    dates = ctx.matrix.dates
    col = dates.get_indexer(pd.DatetimeIndex(events["time"]).normalize())
    ok = (rows >= 0) & (col >= window) & (col + window <= len(dates))
    events, rows, col = events[ok], rows[ok], col[ok]
    if events.empty:
        return pd.DataFrame()
    shape, _ = deseasonalise(ctx.matrix.values[rows], ctx.class_codes[rows])
    means = window_means(shape, window)
    i = np.arange(len(rows))
    before, after = means[i, col - window], means[i, np.minimum(col, means.shape[1] - 1)]
    with np.errstate(invalid="ignore", divide="ignore"):
        drop = 1.0 - after / before
    frame = pd.DataFrame(
        {
            "row": rows,
            "code": events["code"].to_numpy(),
            "time": events["time"].to_numpy(),
            "drop": drop,
        }
    )
    frame = frame[frame["drop"] >= 0.3]
    frame = frame.sort_values("drop", ascending=False).drop_duplicates("row")
    if frame.empty:
        return pd.DataFrame()
    frame = frame[_active(ctx)[frame["row"].to_numpy()]]
    out = _base(ctx, frame["row"].to_numpy())
    out["score"] = frame["drop"].to_numpy()
    pct = pd.Series(np.round(frame["drop"].to_numpy() * 100)).astype(int).astype(str)
    code = pd.Series(frame["code"].to_numpy())
    when = pd.Series(pd.to_datetime(frame["time"]).dt.strftime("%Y-%m-%d").to_numpy())
    out["reason_zh"] = when + "终端告警" + code + f"，其后{window}日电量下降" + pct + "%"
    out["reason_en"] = (
        "alarm "
        + code
        + " on "
        + when
        + ", consumption down "
        + pct
        + f"% in the next {window} days"
    )
    out["evidence"] = evidence_column(
        [
            {"code": c, "time": str(t), "drop": float(d)}
            for c, t, d in zip(code, when, frame["drop"], strict=True)
        ]
    )
    return out
