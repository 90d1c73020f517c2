"""Injected consumption faults: theft patterns, zero consumption, wrong multiplier, over capacity.

Theft (窃电) changes what the meter records, not what the customer consumes: the area's
transformer still sees the true kWh, so the area's line loss rises. The five patterns follow
Jokar et al. (2016): a constant fraction stolen, a random daily fraction, on/off bypass, the
record flattened to a constant, and the record capped at a ceiling. Some thefts leave a cover
opened (ERC37) or meter stopped (ERC30) event near their start; most leave none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit_lib.data.ct_ratios import pt_ratio
from audit_lib.demo.generate.calendar import Calendar
from audit_lib.demo.generate.lifecycle import NEVER, Lifecycle
from audit_lib.demo.generate.population import COM, HV_CT_RATIOS, IND, LV_CT_RATIOS, Population
from audit_lib.demo.generate.service import EventLog
from audit_lib.demo.generate.truth import TruthLog, draw_windows, window_mask
from audit_lib.data.schema import THEFT_KINDS

MULTIPLIER_ERRORS = np.array([0.5, 2 / 3, 0.75, 1.5, 2.0])
CT_STEPS = np.array([-2, -1, 1, 2])  # a replacement CT one or two sizes down or up


@dataclass
class OverCapacity:
    """Customers drawing more than their contracted capacity in months ``m0..m1``."""

    rows: np.ndarray
    m0: np.ndarray
    m1: np.ndarray
    ratio: np.ndarray  # maximum demand ÷ capacity in those months


@dataclass
class Metering:
    """What the injections did to metering: recorded multipliers and the thieves."""

    recorded_multiplier: np.ndarray
    theft_rows: np.ndarray
    theft_start: np.ndarray


def inject_over_capacity(
    rng: np.random.Generator,
    pop: Population,
    cal: Calendar,
    life: Lifecycle,
    true_kwh: np.ndarray,
    truth: TruthLog,
) -> OverCapacity:
    """Commercial/industrial customers exceed their contracted capacity for 2–6 months."""
    eligible = np.isin(pop.cls, (COM, IND)) & life.stable(cal.days)
    rows = truth.pick(rng, "over_capacity", eligible)
    n_months = len(cal.month_labels)
    m0 = rng.integers(0, max(n_months - 2, 1), len(rows))
    m1 = np.minimum(m0 + rng.integers(1, 6, len(rows)), n_months - 1)
    ratio = rng.uniform(1.1, 1.5, len(rows))
    start = cal.month_starts[m0]
    end = np.append(cal.month_starts[1:], cal.days)[m1] - 1
    sub = true_kwh[rows]
    sub *= np.where(window_mask(cal.days, start, end), 1.25, 1.0).astype(np.float32)
    true_kwh[rows] = sub
    truth.add(
        "over_capacity",
        rows,
        start,
        end,
        ratio - 1.0,
        np.char.mod("max demand %.2f x capacity", ratio),
    )
    return OverCapacity(rows, m0, m1, ratio)


def inject_metering(
    rng: np.random.Generator,
    pop: Population,
    cal: Calendar,
    life: Lifecycle,
    metered: np.ndarray,
    truth: TruthLog,
    events: EventLog,
) -> Metering:
    """Apply theft, zero consumption and wrong multipliers to ``metered`` (in place)."""
    d = cal.days
    stable = life.stable(d)
    all_rows, all_start = [], []
    for kind in THEFT_KINDS:  # five patterns, each vectorised over its customers
        rows = truth.pick(rng, kind, stable)
        start, end = draw_windows(rng, len(rows), d, (0.25, 0.75), None)
        early = rng.random(len(rows)) < 0.2  # some thefts stop (caught or given up)
        end = np.where(early, np.minimum(start + rng.integers(60, 200, len(rows)), d - 1), end)
        mask = window_mask(d, start, end)
        sub = metered[rows]
        stolen = _steal(rng, kind, sub, mask, start)
        severity = 1.0 - stolen.sum(axis=1, where=mask) / np.maximum(
            sub.sum(axis=1, where=mask), 1e-6
        )
        metered[rows] = stolen
        truth.add(kind, rows, start, end, severity, "窃电 / theft")
        cover = rng.random(len(rows)) < 0.4
        events.add(rows[cover], start[cover] + rng.integers(-3, 4, int(cover.sum())), "ERC37")
        if kind == "theft_onoff_bypass":  # a bypassed meter sometimes reports itself stopped
            stopped = rng.random(len(rows)) < 0.2
            events.add(
                rows[stopped], start[stopped] + rng.integers(0, 8, int(stopped.sum())), "ERC30"
            )
        all_rows.append(rows)
        all_start.append(start)

    rows = truth.pick(rng, "zero_while_active", stable)
    start, end = draw_windows(rng, len(rows), d, (0.2, 0.8), (30, 400))
    sub = metered[rows]
    sub[window_mask(d, start, end)] = 0.0
    metered[rows] = sub
    truth.add("zero_while_active", rows, start, end, 1.0, "零电量 / zero consumption")
    stopped = rng.random(len(rows)) < 0.3
    events.add(rows[stopped], start[stopped], "ERC30")

    recorded = pop.multiplier.copy()
    rows = truth.pick(rng, "wrong_multiplier", stable & (pop.multiplier > 1))
    factor = MULTIPLIER_ERRORS[rng.integers(0, len(MULTIPLIER_ERRORS), len(rows))]
    recorded[rows] = np.round(pop.multiplier[rows] * factor)
    factor = recorded[rows] / pop.multiplier[rows]
    metered[rows] *= factor[:, None].astype(np.float32)
    detail = np.char.add(
        np.char.mod("recorded %g, ", recorded[rows]),
        np.char.mod("physical %g", pop.multiplier[rows]),
    )
    truth.add("wrong_multiplier", rows, 0, d - 1, np.abs(1.0 - factor), detail.astype(object))
    return Metering(recorded, np.concatenate(all_rows), np.concatenate(all_start))


def _steal(
    rng: np.random.Generator, kind: str, sub: np.ndarray, mask: np.ndarray, start: np.ndarray
) -> np.ndarray:
    """The recorded kWh of thieves ``sub`` (k × days) under pattern ``kind`` inside ``mask``."""
    k, d = sub.shape
    if kind == "theft_constant_fraction":
        new = sub * rng.uniform(0.2, 0.7, (k, 1))
    elif kind == "theft_random_fraction":
        new = sub * rng.uniform(0.1, 0.8, (k, d))
    elif kind == "theft_onoff_bypass":
        blocks = rng.random((k, d // 4 + 1)) < rng.uniform(0.4, 0.8, (k, 1))
        new = np.where(blocks[:, np.arange(d) // 4], sub * 0.05, sub)
    else:
        t = np.arange(d)[None, :]
        history = np.maximum((t < start[:, None]).sum(axis=1), 1)
        level = sub.sum(axis=1, where=t < start[:, None]) / history
        if kind == "theft_flattened":
            new = np.broadcast_to((level * rng.uniform(0.3, 0.7, k))[:, None], sub.shape)
        else:  # theft_capped
            new = np.minimum(sub, (level * rng.uniform(0.4, 0.8, k))[:, None])
    return np.where(mask, new, sub).astype(np.float32)


@dataclass
class Replacements:
    """Meter replacements made by a fault injected after the lifecycle: rows and days."""

    rows: np.ndarray
    day: np.ndarray


def inject_multiplier_not_updated(
    rng: np.random.Generator,
    pop: Population,
    cal: Calendar,
    life: Lifecycle,
    metered: np.ndarray,
    recorded: np.ndarray,
    truth: TruthLog,
) -> Replacements:
    """A meter replaced together with its CT, the new CT of another ratio, while the record
    keeps the old multiplier (换表后倍率未更新).

    From the replacement day the system multiplies the new meter's register by the old
    multiplier: it records true kWh × recorded ÷ new physical multiplier (``metered``, in
    place). The rows' ``life.replace_day`` is set, so the meter table and the registers show
    the replacement; the replacement day's partial reading and missing days are the caller's
    (:func:`audit_lib.demo.generate.dq.replacement_gaps`, after the bills are built).
    """
    d = cal.days
    eligible = life.stable(d) & (pop.multiplier > 1) & (life.replace_day == NEVER)
    rows = truth.pick(rng, "multiplier_not_updated", eligible, take=False)
    day, _ = draw_windows(rng, len(rows), d, (0.1, 0.9), None)
    pt = pt_ratio(pop.voltage[rows])
    step = CT_STEPS[rng.integers(0, len(CT_STEPS), len(rows))]
    new_ct = np.empty(len(rows))
    for series, part in ((LV_CT_RATIOS, pt == 1.0), (HV_CT_RATIOS, pt > 1.0)):  # two series
        i = np.searchsorted(series, pop.multiplier[rows][part] / pt[part])
        j = np.clip(i + step[part], 0, len(series) - 1)
        new_ct[part] = series[np.where(j == i, np.clip(i - step[part], 0, len(series) - 1), j)]
    physical = new_ct * pt
    factor = recorded[rows] / physical
    sub = metered[rows]
    sub *= np.where(np.arange(d)[None, :] >= day[:, None], factor[:, None], 1.0).astype(np.float32)
    metered[rows] = sub
    life.replace_day[rows] = day
    detail = np.char.add(
        np.char.mod("recorded %g, ", recorded[rows]),
        np.char.mod("physical %g after the replacement", physical),
    )
    severity = np.abs(1.0 - factor)
    truth.add("multiplier_not_updated", rows, day, d - 1, severity, detail.astype(object))
    return Replacements(rows, day)
