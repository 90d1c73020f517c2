"""The meter multiplier theme (倍率异常): four independent checks of a recorded multiplier.

1. **Standard ratio.** A multiplier is CT ratio × PT ratio from the standard series
   (:mod:`audit_lib.data.ct_ratios`); any other value is a typo.
2. **Capacity.** The CT's rated primary current should be at least the contracted capacity's
   rated current and not many times above it (``ct_low``..``ct_high``).
3. **Energy balance.** The station area's supply estimates physical ÷ recorded multiplier
   (:mod:`audit_lib.detect.scoring.balance_fit`: a joint regression of the area's daily supply
   changes on each CT customer and the rest, or the supply ÷ readings of a dedicated
   transformer). Kept when the factor is at least ``tolerance`` away from 1, ``min_z`` standard
   errors firm, the same in every one of ``segments`` parts of the window (a multiplier does
   not change; a theft starts), and the multiplier it implies would fit the contracted
   capacity (``ct_low``..``ct_high``).
4. **Replacement step.** A multiplier that did change, at a meter replacement, without the
   record following (:mod:`audit_lib.detect.scoring.replacement`: a step in the readings on
   the replacement day that the area's balance confirms and that implies another standard
   multiplier; ``step_*``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit_lib.data.balance import area_balance
from audit_lib.data.ct_ratios import pt_ratio, standard_multipliers
from audit_lib.detect.context import DetectionContext
from audit_lib.detect.findings import evidence_column
from audit_lib.detect.scoring.balance_fit import BalanceFit, balance_fit
from audit_lib.detect.scoring.replacement import GAP_DAYS, Replaced, StepFit, confirmed_steps
from audit_lib.themes.catalogue import Theme


def plausibility(
    mult: np.ndarray, capacity_kva: np.ndarray, voltage_kv: np.ndarray
) -> pd.DataFrame:
    """Standard-ratio and capacity checks of each multiplier (vectorised).

    Returns
    -------
    DataFrame
        ``standard`` (bool), ``ct_primary_a`` implied by the multiplier and ``rated_a`` (the
        contracted capacity's rated current at the supply voltage).
    """
    standard = np.isin(np.round(mult, 6), np.round(standard_multipliers(), 6))
    volts = np.where(voltage_kv >= 10, voltage_kv, 0.4)
    rated = capacity_kva / (np.sqrt(3) * volts)
    primary = mult / pt_ratio(voltage_kv) * 5.0
    return pd.DataFrame({"standard": standard, "ct_primary_a": primary, "rated_a": rated})


def balance_disagrees(fit: BalanceFit, ct_over_rated: np.ndarray, theme: Theme) -> np.ndarray:
    """The balance check: a firm factor away from 1 that would give a plausible CT.

    Firm: ``|log ratio| ≥ log(1 + tolerance)``, ``z ≥ min_z`` after the segments' disagreement
    is counted, and an estimate in at least two segments. Plausible: the CT the implied
    multiplier stands for is within ``ct_low..ct_high`` × the contracted capacity's rated current
    (a factor that would leave the CT smaller than the load, or oversized, is more likely a
    theft or another customer's error than this multiplier).
    """
    tol = np.log1p(theme.param("tolerance"))
    with np.errstate(invalid="ignore", divide="ignore"):
        implied = ct_over_rated * fit.ratio  # CT primary ÷ rated current at the implied multiplier
        firm = (np.abs(np.log(fit.ratio)) >= tol) & (fit.z >= theme.param("min_z"))
    plausible = (implied >= theme.param("ct_low")) & (implied <= theme.param("ct_high"))
    return firm & plausible & (fit.segments >= 2)


def detect_multiplier_anomaly(ctx: DetectionContext, theme: Theme) -> pd.DataFrame:
    """Customers whose recorded multiplier fails the standard-ratio, capacity, balance or
    replacement-step check (one row per customer: the highest-scoring check's)."""
    parts = [h for h in (_record_hits(ctx, theme), detect_replacement_steps(ctx, theme)) if len(h)]
    if not parts:
        return pd.DataFrame()
    hits = pd.concat(parts, ignore_index=True).sort_values("score", ascending=False, kind="stable")
    return hits.drop_duplicates("entity").reset_index(drop=True)


def _record_hits(ctx: DetectionContext, theme: Theme) -> pd.DataFrame:
    """The standard-ratio, capacity and balance checks of each current meter's multiplier."""
    meters = ctx.meters
    current = meters[meters["remove_date"].isna()].drop_duplicates("cons_no", keep="last")
    at = pd.Index(current["cons_no"]).get_indexer(ctx.customers["cons_no"])
    recorded = current["multiplier"].to_numpy(dtype=float)
    mult = np.where(at >= 0, recorded[np.maximum(at, 0)] if len(recorded) else 1.0, 1.0)
    mult = np.nan_to_num(mult, nan=1.0)
    rows = np.flatnonzero(mult > 1)
    if not len(rows):
        return pd.DataFrame()
    cust = ctx.customers.iloc[rows]
    plaus = plausibility(
        mult[rows], cust["capacity_kva"].to_numpy(float), cust["voltage_kv"].to_numpy(float)
    )
    ct_ratio = (plaus["ct_primary_a"] / plaus["rated_a"]).to_numpy()
    bad_capacity = (ct_ratio < theme.param("ct_low")) | (ct_ratio > theme.param("ct_high"))
    fit = balance_fit(ctx, area_balance(ctx), rows, int(theme.param("segments")))
    off = balance_disagrees(fit, ct_ratio, theme)
    hit = off | ~plaus["standard"].to_numpy() | bad_capacity
    if not hit.any():
        return pd.DataFrame()
    period_kwh = _period_kwh(ctx, rows[hit])
    return _hits(ctx, rows[hit], mult[rows][hit], plaus[hit], ct_ratio[hit], fit, hit, off[hit],
                 period_kwh)  # fmt: skip


def _period_kwh(ctx: DetectionContext, rows: np.ndarray) -> np.ndarray:
    """Recorded kWh of ``rows`` within the period (the history before it left out)."""
    in_period = np.asarray(ctx.matrix.dates >= pd.Timestamp(ctx.start))
    values = ctx.matrix.values[rows][:, in_period]
    return np.where(ctx.open_mask[rows][:, in_period], np.nan_to_num(values), 0.0).sum(1)


def _hits(
    ctx: DetectionContext,
    picked: np.ndarray,
    recorded: np.ndarray,
    plaus: pd.DataFrame,
    ct_ratio: np.ndarray,
    fit: BalanceFit,
    hit: np.ndarray,
    off: np.ndarray,
    period_kwh: np.ndarray,
) -> pd.DataFrame:
    cust = ctx.customers.iloc[picked]
    out = pd.DataFrame(
        {
            "entity": cust["cons_no"].to_numpy(),
            "station_id": cust["station_id"].to_numpy(),
            "area_id": cust["area_id"].to_numpy(),
        }
    )
    ratio = np.where(off, fit.ratio[hit], np.nan)
    standard = plaus["standard"].to_numpy()
    out["score"] = np.nan_to_num(np.abs(np.log(ratio)), nan=0.0) + (~standard) + 0.5
    out["kwh_at_risk"] = np.maximum(np.nan_to_num(period_kwh * (ratio - 1)), 0.0)
    out["money_at_risk"] = out["kwh_at_risk"] * ctx.prices.iloc[picked].to_numpy()
    rec = pd.Series(recorded).round(2).astype(str).str.removesuffix(".0")
    implied = pd.Series(np.round(recorded * np.nan_to_num(ratio, nan=1.0))).astype(int).astype(str)
    seg = fit.segment_ratio[hit]
    lo, hi = np.fmin.reduce(seg, axis=1), np.fmax.reduce(seg, axis=1)  # NaN-skipping
    parts = pd.Series(fit.segments[hit]).astype(str)
    spread = pd.Series([f"{a:.2f}–{b:.2f}" for a, b in zip(lo, hi, strict=True)])
    z = pd.Series(fit.z[hit]).round(1).astype(str)
    ct_text = pd.Series(ct_ratio).round(1).astype(str)
    why_zh = np.where(
        off, "与台区电量平衡推算倍率约" + implied + "不符（" + parts + "个时段比值均在"
        + spread + "，z=" + z + "）",
        np.where(standard, "与合同容量不匹配（CT一次电流为额定电流的" + ct_text + "倍）",
                 "不是标准变比"),
    )  # fmt: skip
    why_en = np.where(
        off, "disagrees with about " + implied + " implied by the area's energy balance (ratio "
        + spread + " in all " + parts + " parts of the window, z = " + z + ")",
        np.where(standard, "does not match the contracted capacity (CT primary "
                 + ct_text + "× rated current)", "is not a standard CT × PT ratio"),
    )  # fmt: skip
    out["reason_zh"] = "档案倍率" + rec + why_zh
    out["reason_en"] = "recorded multiplier " + rec + " " + why_en
    out["evidence"] = evidence_column(
        [
            {
                "recorded": float(r),
                "standard_ratio": bool(s),
                "ct_primary_over_rated": float(c),
                "balance_ratio": None if np.isnan(b) else float(b),
                "balance_z": None if not np.isfinite(zz) else float(zz),
                "segment_ratios": [None if not np.isfinite(v) else round(float(v), 3) for v in sr],
                "share_of_area": float(sh),
                "dedicated_transformer": bool(al),
            }
            for r, s, c, b, zz, sr, sh, al in zip(
                recorded, standard, ct_ratio, ratio, fit.z[hit], seg, fit.share[hit],
                fit.alone[hit], strict=True,
            )
        ]
    )  # fmt: skip
    return out


def detect_replacement_steps(ctx: DetectionContext, theme: Theme) -> pd.DataFrame:
    """Hits (the theme's columns) of customers whose readings stepped at a meter replacement
    by a standard ratio that their area's balance confirms."""
    rep, fit, hit = confirmed_steps(ctx, theme)
    if not hit.any():
        return pd.DataFrame()
    return _step_hits(ctx, rep, fit, hit)


def _step_hits(ctx: DetectionContext, rep: Replaced, fit: StepFit, hit: np.ndarray) -> pd.DataFrame:
    rows, step = rep.rows[hit], fit.step[hit]
    cust = ctx.customers.iloc[rows]
    since = np.maximum(
        rep.day[hit] + GAP_DAYS, int(np.sum(ctx.matrix.dates < pd.Timestamp(ctx.start)))
    )
    days = np.arange(len(ctx.matrix.dates))[None, :]
    recorded_kwh = np.where(
        (days >= since[:, None]) & ctx.open_mask[rows], np.nan_to_num(ctx.matrix.values[rows]), 0.0
    ).sum(1)
    kwh_at_risk = np.maximum(recorded_kwh * (1.0 / step - 1.0), 0.0)
    date = pd.Series(rep.date[hit]).dt.strftime("%Y-%m-%d")
    rec = pd.Series(rep.recorded[hit]).round(2).astype(str).str.removesuffix(".0")
    implied = pd.Series(fit.standard[hit]).round(2).astype(str).str.removesuffix(".0")
    before = pd.Series(fit.before[hit]).round(1).astype(str)
    after = pd.Series(fit.after[hit]).round(1).astype(str)
    ratio = pd.Series(step).round(2).astype(str)
    area = pd.Series(fit.area_change[hit]).round(1)
    area_txt = area.abs().astype(str)
    up_zh = np.where(area > 0, "增加", "减少")
    up_en = np.where(area > 0, "rose", "fell")
    out = pd.DataFrame(
        {
            "entity": cust["cons_no"].to_numpy(),
            "station_id": cust["station_id"].to_numpy(),
            "area_id": cust["area_id"].to_numpy(),
            "score": np.abs(np.log(step)) + 0.5,
            "kwh_at_risk": kwh_at_risk,
            "money_at_risk": kwh_at_risk * ctx.prices.iloc[rows].to_numpy(),
        }
    )
    out["reason_zh"] = (
        "换表(" + date + ")后档案倍率" + rec + "疑似未随CT更新：日均电量由" + before + "变为"
        + after + "（×" + ratio + "），台区损失电量同期" + up_zh + area_txt + "kWh/日，推算倍率约"
        + implied
    )  # fmt: skip
    out["reason_en"] = (
        "recorded multiplier " + rec + " looks not updated with the CT at the meter replacement on "
        + date + ": daily kWh " + before + " → " + after + " (×" + ratio + ") while the area's "
        "unexplained energy " + up_en + " by " + area_txt + " kWh/day; implied multiplier about "
        + implied
    )  # fmt: skip
    out["evidence"] = evidence_column(
        [
            {
                "check": "replacement_step",
                "replaced_on": d,
                "recorded": float(r),
                "previous_meter": float(p),
                "kwh_per_day_before": round(float(b), 2),
                "kwh_per_day_after": round(float(a), 2),
                "step": round(float(s), 4),
                "area_factor": round(float(f), 4),
                "implied": round(float(i), 2),
                "nearest_standard": float(n),
                "area_change_kwh_per_day": round(float(c), 2),
                "area_z": round(float(z), 1),
            }
            for d, r, p, b, a, s, f, i, n, c, z in zip(
                date, rep.recorded[hit], rep.previous[hit], fit.before[hit], fit.after[hit], step,
                fit.factor[hit], fit.implied[hit], fit.standard[hit], fit.area_change[hit],
                fit.area_z[hit], strict=True,
            )
        ]
    )  # fmt: skip
    return out
