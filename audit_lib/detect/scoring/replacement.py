"""A multiplier left unchanged when the meter and its CT were replaced (换表后倍率未更新).

A reading is the register times the recorded multiplier. When a meter is replaced together
with its CT and the record keeps the old multiplier (or takes a wrong new one), the readings
step on the replacement day by f = recorded ÷ new physical multiplier, while the station
area's transformer meter keeps seeing the same energy: from that day the area's unexplained
energy (supply − Σ readings) grows by reading × (1/f − 1), day by day.

For every customer whose meter was replaced inside the loaded window, with ``step_min_days``
days on each side among the ``step_days`` before and after (the replacement day and the two
after it left out: the fitting leaves a partial day and a gap):

1. ``step``: the customer's median daily kWh after ÷ before;
2. ``factor``: f from the area, by least squares through the origin of the area's
   unexplained energy after the replacement (less its median before) on the customer's
   readings of the same days; and the area's change, after − before medians, with its
   standard error from the spread of the days;
3. kept when the factor is at least 10 % away from 1, the area's change is ``step_min_z``
   standard errors firm, the step agrees with the factor (within ×1.5, the customer's own
   use drifts with the season), and the multiplier the factor implies (recorded ÷ f) is
   within ``step_standard_tol`` of a standard multiplier at the customer's voltage other than
   the recorded one. A customer whose use really changed at the replacement leaves the area's
   balance where it was.

A small CT customer in a large public area moves the area's balance less than its daily
noise; such a step is not confirmed and not reported. Vectorised over the replaced customers
(a few per thousand): one gather of their two windows from the matrix and of their areas'
balance, no loop over customers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from audit_lib.data.balance import AreaBalance, area_balance
from audit_lib.data.ct_ratios import nearest_standard
from audit_lib.data.meters import later_meters
from audit_lib.detect.context import DetectionContext
from audit_lib.themes.catalogue import Theme

GAP_DAYS = 3  # the replacement day (partial) and the two days after it (not collected)
MIN_FACTOR = 1.1  # the area's factor at least 10 % away from 1
STEP_AGREEMENT = 1.5  # the readings' own step within × 1.5 of the area's factor


@dataclass
class Replaced:
    """Customers whose meter was replaced inside the window (rows of the context)."""

    rows: np.ndarray
    day: np.ndarray  # column of the replacement day in the matrix
    date: np.ndarray  # datetime64[D]
    recorded: np.ndarray  # multiplier of the new meter
    previous: np.ndarray  # multiplier of the meter it replaced


def replaced_meters(ctx: DetectionContext, min_days: int) -> Replaced:
    """The latest replacement of each customer with ``min_days`` of room on both sides."""
    later = later_meters(ctx.meters)
    later = later[later["previous"].notna()].drop_duplicates("cons_no", keep="last")
    rows = pd.Index(ctx.customers["cons_no"]).get_indexer(later["cons_no"])
    date = pd.to_datetime(later["install_date"]).to_numpy().astype("datetime64[D]")
    day = (date - ctx.matrix.dates[0].to_datetime64().astype("datetime64[D]")).astype(int)
    room = (rows >= 0) & (day >= min_days) & (day < len(ctx.matrix.dates) - GAP_DAYS - min_days)
    return Replaced(
        rows[room],
        day[room],
        date[room],
        later["multiplier"].to_numpy(float)[room],
        later["previous"].to_numpy(float)[room],
    )


def _windows(day: np.ndarray, side: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns (replaced × side) before and after each replacement, and whether in range."""
    cols = np.concatenate(
        [day[:, None] + np.arange(-side, 0), day[:, None] + np.arange(GAP_DAYS, GAP_DAYS + side)],
        axis=1,
    )
    return cols.clip(0, width - 1), (cols >= 0) & (cols < width)


def _median_and_se(x: np.ndarray, min_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Row medians (NaN under ``min_days`` values) and their standard errors (from the MAD)."""
    n = np.sum(~np.isnan(x), axis=1)
    x = np.where(n[:, None] >= min_days, x, 0.0)  # short rows: no all-NaN slice, NaN below
    med = np.nanmedian(x, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = 1.2533 * 1.4826 * np.nanmedian(np.abs(x - med[:, None]), axis=1) / np.sqrt(n)
    return np.where(n >= min_days, med, np.nan), np.where(n >= min_days, se, np.nan)


@dataclass
class StepFit:
    """Per replaced customer: the step of its readings and what its area's balance says."""

    before: np.ndarray  # median kWh/day before
    after: np.ndarray
    factor: np.ndarray  # readings ÷ physical energy after the replacement, from the area
    area_change: np.ndarray  # the area's unexplained energy, after − before, kWh/day
    area_z: np.ndarray
    implied: np.ndarray  # recorded ÷ factor
    standard: np.ndarray  # the standard multiplier nearest ``implied`` at the voltage

    @property
    def step(self) -> np.ndarray:
        """After ÷ before (NaN when either side is short of days or nothing before)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.before > 0, self.after / self.before, np.nan)


def step_fit(
    ctx: DetectionContext, balance: AreaBalance, rep: Replaced, side: int, min_days: int
) -> StepFit:
    """Measure the step at each replacement (see the module docstring)."""
    width = len(ctx.matrix.dates)
    cols, inside = _windows(rep.day, side, width)
    rows = rep.rows[:, None]
    kwh = ctx.matrix.values[rows, cols].astype(np.float64)
    kwh[~inside | ~ctx.open_mask[rows, cols]] = np.nan
    area = np.maximum(balance.customer_area[rep.rows], 0)[:, None]
    gap = (balance.supply - balance.consumed)[area, cols]
    known = (
        inside & balance.computable[area, cols] & (balance.customer_area[rep.rows] >= 0)[:, None]
    )
    gap[~known] = np.nan
    before, _ = _median_and_se(kwh[:, :side], min_days)
    after, _ = _median_and_se(kwh[:, side:], min_days)
    gap_before, se_before = _median_and_se(gap[:, :side], min_days)
    gap_after, se_after = _median_and_se(gap[:, side:], min_days)
    extra = gap[:, side:] - gap_before[:, None]  # the area's added unexplained energy
    read = kwh[:, side:]
    both = ~np.isnan(extra) & ~np.isnan(read)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.sum(np.where(both, extra * read, 0.0), 1) / np.sum(np.where(both, read**2, 0.0), 1)
        factor = np.where(k > -1.0, 1.0 / (1.0 + k), np.nan)
        change = gap_after - gap_before
        z = np.abs(change) / np.hypot(se_before, se_after)
        implied = rep.recorded / factor
    voltage = ctx.customers["voltage_kv"].to_numpy(float)[rep.rows]
    standard = nearest_standard(implied, voltage)
    return StepFit(before, after, factor, change, z, implied, standard)


def step_disagrees(fit: StepFit, recorded: np.ndarray, theme: Theme) -> np.ndarray:
    """The decision rule of the module docstring, per replaced customer."""
    with np.errstate(invalid="ignore", divide="ignore"):
        away = np.abs(np.log(fit.factor)) >= np.log(MIN_FACTOR)
        agrees = np.abs(np.log(fit.step / fit.factor)) <= np.log(STEP_AGREEMENT)
        on_standard = np.abs(np.log(fit.implied / fit.standard)) <= np.log1p(
            theme.param("step_standard_tol")
        )
    other = ~np.isclose(fit.standard, recorded)
    return away & agrees & on_standard & other & (fit.area_z >= theme.param("step_min_z"))


def confirmed_steps(ctx: DetectionContext, theme: Theme) -> tuple[Replaced, StepFit, np.ndarray]:
    """Every replacement in the window, its step fit and whether the rule confirms it; built
    once per context and parameters (the multiplier and theft themes both ask)."""
    key = ("replacement_steps", *sorted(theme.params.items()))
    return ctx.shared(key, lambda: _confirmed_steps(ctx, theme))


def _confirmed_steps(ctx: DetectionContext, theme: Theme) -> tuple[Replaced, StepFit, np.ndarray]:
    side, min_days = int(theme.param("step_days")), int(theme.param("step_min_days"))
    rep = replaced_meters(ctx, min_days)
    if not len(rep.rows):
        empty = np.zeros(0)
        return rep, StepFit(*[empty] * 7), np.zeros(0, dtype=bool)
    fit = step_fit(ctx, area_balance(ctx), rep, side, min_days)
    return rep, fit, step_disagrees(fit, rep.recorded, theme)


def explained_days(ctx: DetectionContext) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the context and the first matrix column of each confirmed step: from the
    replacement on, the readings are the multiplier theme's evidence (its parameters), and
    the theft score leaves those days out, as it leaves exact-zero runs to their theme."""
    rep, _, hit = confirmed_steps(ctx, ctx.theme("multiplier_anomaly"))
    return rep.rows[hit], rep.day[hit]
