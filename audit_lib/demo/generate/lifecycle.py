"""Legitimate changes: move-in, move-out, vacancy and meter replacement.

They look like drops (or gaps) in the metered series but are NOT theft, and they are labelled
``legit_*`` in the truth table so detectors can be scored on not flagging them. They change the
TRUE consumption (the area's supply follows), except meter replacement, which only leaves a
partial day, two missing days and a new meter (with a fresh register).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit_lib.demo.generate.population import RES, Population
from audit_lib.demo.generate.service import EventLog
from audit_lib.demo.generate.truth import TruthLog, draw_windows, window_mask

NEVER = -1


@dataclass
class Lifecycle:
    """Account and meter dates per customer, as day indices of the period."""

    open_day: np.ndarray  # int64; negative = opened before the period
    close_day: np.ndarray  # int64; days = still open at the end
    replace_day: np.ndarray  # int64; NEVER = meter not replaced

    def stable(self, days: int) -> np.ndarray:
        """Customers open for the whole period (eligible for most injections)."""
        return (self.open_day <= 0) & (self.close_day >= days)

    def active(self, days: int) -> np.ndarray:
        """(customers, days) bool: account open on that day."""
        t = np.arange(days)[None, :]
        return (t >= self.open_day[:, None]) & (t < self.close_day[:, None])


def apply_lifecycle(
    rng: np.random.Generator,
    pop: Population,
    true_kwh: np.ndarray,
    truth: TruthLog,
    events: EventLog,
) -> Lifecycle:
    """Inject the legitimate changes into ``true_kwh`` (in place) and label them."""
    n, d = true_kwh.shape
    life = Lifecycle(
        open_day=np.minimum(pop.open_day, 0),
        close_day=np.full(n, d, dtype=np.int64),
        replace_day=np.full(n, NEVER, dtype=np.int64),
    )
    everyone = np.ones(n, dtype=bool)

    rows = truth.pick(rng, "legit_move_in", everyone)
    opened, _ = draw_windows(rng, len(rows), d, (0.1, 0.8), None)
    life.open_day[rows] = opened
    sub = true_kwh[rows]
    sub[np.arange(d)[None, :] < opened[:, None]] = 0.0
    true_kwh[rows] = sub
    truth.add("legit_move_in", rows, opened, d - 1, 1.0, "新装 / new account")

    rows = truth.pick(rng, "legit_move_out", everyone)
    closed, _ = draw_windows(rng, len(rows), d, (0.2, 0.9), None)
    ramp = rng.integers(7, 21, len(rows))
    life.close_day[rows] = closed
    sub = true_kwh[rows]
    t = np.arange(d)[None, :]
    sub *= np.where(t >= (closed - ramp)[:, None], rng.uniform(0.2, 0.5, (len(rows), 1)), 1.0)
    sub[t >= closed[:, None]] = 0.0
    true_kwh[rows] = sub
    truth.add("legit_move_out", rows, closed - ramp, d - 1, 1.0, "销户 / account closed")

    rows = truth.pick(rng, "legit_vacancy", (pop.cls == RES) & life.stable(d))
    start, end = draw_windows(rng, len(rows), d, (0.1, 0.7), (30, 120))
    mask = window_mask(d, start, end)
    sub = true_kwh[rows]
    before = sub.sum(axis=1, where=mask)
    standby = rng.uniform(0.03, 0.3, (len(rows), 1)) * rng.lognormal(0, 0.3, sub.shape)
    sub = np.where(mask, standby.astype(np.float32), sub)
    true_kwh[rows] = sub
    severity = 1.0 - sub.sum(axis=1, where=mask) / np.maximum(before, 1e-6)
    truth.add("legit_vacancy", rows, start, end, severity, "房屋空置 / dwelling vacant")

    rows = truth.pick(rng, "legit_meter_replacement", life.stable(d))
    day, _ = draw_windows(rng, len(rows), d, (0.1, 0.9), None)
    life.replace_day[rows] = day
    truth.add("legit_meter_replacement", rows, day, day + 2, 0.0, "换表 / meter replaced")
    # the fitter opens the cover: a legitimate ERC37 (cover opened) half of the time
    fitted = rng.random(len(rows)) < 0.5
    events.add(rows[fitted], day[fitted], "ERC37")
    return life
