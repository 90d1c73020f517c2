"""The meter multiplier theme (倍率异常): three independent checks of a recorded multiplier.

1. **Standard ratio.** A multiplier is CT ratio × PT ratio; CT rated primary currents follow the
   standard series (GB/T 20840: 10, 12.5, 15, 20, 25, 30, 40, 50, 60, 75 A and decimal multiples,
   secondary 5 A) and PTs bring 10 kV or 35 kV down to 100 V. Any other value is a typo.
2. **Capacity.** The CT's rated primary current should be at least the contracted capacity's
   rated current and not many times above it (``ct_low``..``ct_high``).
3. **Energy balance.** The station area's daily supply is regressed, in day-to-day changes, on
   the customer's readings and on the other customers' sum: ``Δsupply ≈ a·Δx + c·Δothers``. With
   a right multiplier ``a ≈ c``; a multiplier ``f`` times the physical one gives ``a ≈ c / f``.
   Kept when the correction explains at least ``min_gain`` of the area's unexplained variance and
   is the best explanation in its area.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from audit_lib.detect.context import DetectionContext
from audit_lib.detect.findings import evidence_column
from audit_lib.detect.lineloss import AreaBalance, area_balance
from audit_lib.themes.catalogue import Theme

_CT_PRIMARY = np.array([10, 12.5, 15, 20, 25, 30, 40, 50, 60, 75])
CT_PRIMARY_A = np.unique(np.concatenate([_CT_PRIMARY * 10.0**k for k in range(-1, 4)]))
PT_RATIOS = {0.4: 1.0, 10.0: 100.0, 35.0: 350.0}


def standard_multipliers() -> np.ndarray:
    """Every multiplier a standard CT (x/5 A) and PT (none, 10 kV/100 V, 35 kV/100 V) give."""
    ct = CT_PRIMARY_A / 5.0
    return np.unique(np.concatenate([ct * pt for pt in PT_RATIOS.values()]))


def _pt_ratio(voltage_kv: np.ndarray) -> np.ndarray:
    return np.where(voltage_kv >= 35, 350.0, np.where(voltage_kv >= 10, 100.0, 1.0))


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
    primary = mult / _pt_ratio(voltage_kv) * 5.0
    return pd.DataFrame({"standard": standard, "ct_primary_a": primary, "rated_a": rated})


@dataclass
class BalanceFit:
    """Per CT customer: implied ratio a / c, variance explained, days and share of the area."""

    ratio: np.ndarray
    gain: np.ndarray
    days: np.ndarray
    share: np.ndarray
    metered: np.ndarray


def balance_fit(ctx: DetectionContext, balance: AreaBalance, rows: np.ndarray) -> BalanceFit:
    """Regress each area's daily supply changes on one customer's and the others' changes."""
    area = balance.customer_area[rows]
    x = np.where(ctx.open_mask[rows], ctx.matrix.values[rows], np.nan).astype(np.float64)
    others = balance.consumed[area] - np.nan_to_num(x)
    y = balance.supply[area]
    ok = balance.computable[area] & ~np.isnan(x)
    ok = ok[:, 1:] & ok[:, :-1]  # day-to-day changes: the shared seasonal swing cancels
    x0, o0, y0 = (np.where(ok, np.diff(v, axis=1), 0.0) for v in (x, others, y))
    sxx, soo, sxo = (x0 * x0).sum(1), (o0 * o0).sum(1), (x0 * o0).sum(1)
    sxy, soy, syy = (x0 * y0).sum(1), (o0 * y0).sum(1), (y0 * y0).sum(1)
    stt, sty = ((x0 + o0) ** 2).sum(1), ((x0 + o0) * y0).sum(1)
    xs = np.where(ok, np.nan_to_num(x[:, 1:]), 0.0).sum(1)
    os_ = np.where(ok, others[:, 1:], 0.0).sum(1)
    share = xs / np.maximum(xs + os_, 1e-9)
    with np.errstate(invalid="ignore", divide="ignore"):
        det = sxx * soo - sxo**2
        a = (soo * sxy - sxo * soy) / det
        c = (sxx * soy - sxo * sxy) / det
        gain = 1.0 - (syy - a * sxy - c * soy) / (syy - sty**2 / stt)
        # alone behind its transformer (专变): the balance gives the ratio directly
        level = np.where(ok, y[:, 1:], 0.0).sum(1) / xs / 1.01
    alone = share >= 0.99
    ratio = np.where(alone, level, a / c)
    gain = np.where(alone, 1.0, gain)
    return BalanceFit(ratio, gain, ok.sum(1), share, xs)


def detect_multiplier_anomaly(ctx: DetectionContext, theme: Theme) -> pd.DataFrame:
    """Customers whose recorded multiplier fails the standard-ratio, capacity or balance check."""
    meters = ctx.mart.meters(ctx.bureau)
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
    ct_ratio = plaus["ct_primary_a"] / plaus["rated_a"]
    bad_capacity = (ct_ratio < theme.param("ct_low")) | (ct_ratio > theme.param("ct_high"))
    balance = area_balance(ctx)
    fit = balance_fit(ctx, balance, rows)
    tolerance = np.log(1 + theme.param("tolerance") * 10)
    off = (fit.days >= 30) & (fit.ratio > 0) & (fit.gain >= theme.param("min_gain"))
    with np.errstate(invalid="ignore", divide="ignore"):
        off &= np.abs(np.log(fit.ratio)) > tolerance
    area = balance.customer_area[rows]
    best = pd.Series(np.where(off, fit.gain, -np.inf)).groupby(area).transform("max").to_numpy()
    off &= fit.gain >= best  # one explanation per area
    hit = off | ~plaus["standard"].to_numpy() | bad_capacity.to_numpy()
    if not hit.any():
        return pd.DataFrame()
    return _hits(ctx, rows[hit], mult[rows][hit], plaus[hit], ct_ratio[hit], fit, hit, off[hit])


def _hits(
    ctx: DetectionContext,
    picked: np.ndarray,
    recorded: np.ndarray,
    plaus: pd.DataFrame,
    ct_ratio: pd.Series,
    fit: BalanceFit,
    hit: np.ndarray,
    off: np.ndarray,
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
    out["kwh_at_risk"] = np.maximum(np.nan_to_num(fit.metered[hit] * (ratio - 1)), 0.0)
    out["money_at_risk"] = out["kwh_at_risk"] * ctx.prices.iloc[picked].to_numpy()
    rec = pd.Series(recorded).round(2).astype(str).str.removesuffix(".0")
    implied = pd.Series(np.round(recorded * np.nan_to_num(ratio, nan=1.0))).astype(int).astype(str)
    why_zh = np.where(
        off, "与台区电量平衡推算倍率约" + implied + "不符",
        np.where(standard, "与合同容量不匹配（CT一次电流为额定电流的"
                 + ct_ratio.round(1).astype(str).to_numpy() + "倍）", "不是标准变比"),
    )  # fmt: skip
    why_en = np.where(
        off, "disagrees with about " + implied + " implied by the area's energy balance",
        np.where(standard, "does not match the contracted capacity (CT primary "
                 + ct_ratio.round(1).astype(str).to_numpy() + "× rated current)",
                 "is not a standard CT × PT ratio"),
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
                "variance_explained": float(g),
                "share_of_area": float(sh),
            }
            for r, s, c, b, g, sh in zip(
                recorded, standard, ct_ratio, ratio, fit.gain[hit], fit.share[hit], strict=True
            )
        ]
    )
    return out
