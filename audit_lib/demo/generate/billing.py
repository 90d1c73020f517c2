"""Monthly bills that follow the tariffs, and payments against their due dates.

Bills are built from the METERED kWh (what the system recorded, after theft and multiplier
errors), over the days the account was open. Registers advance by kWh ÷ recorded multiplier;
a replaced meter restarts from zero. Injected here: tariff not valid for the class, bill
amount not equal to kWh × price, register going backwards (with an ERC27 event), arrears.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit_lib.demo.generate import tariffs as tf
from audit_lib.demo.generate.anomalies import OverCapacity
from audit_lib.demo.generate.calendar import Calendar
from audit_lib.demo.generate.lifecycle import Lifecycle
from audit_lib.demo.generate.population import COM, IND, Population
from audit_lib.demo.generate.service import EventLog
from audit_lib.demo.generate.truth import TruthLog

DUE_DAYS = 14  # bills are due on the 15th of the following month


@dataclass
class Bills:
    """Bill rows as arrays (one per open customer-month) plus the tariff each customer has."""

    row: np.ndarray
    month: np.ndarray
    cols: dict[str, np.ndarray]
    tariff: np.ndarray  # int8 per customer: the tariff actually applied


def month_ends(cal: Calendar) -> np.ndarray:
    """Exclusive end day index of each month within the period."""
    return np.append(cal.month_starts[1:], cal.days)


def build_bills(
    rng: np.random.Generator,
    pop: Population,
    cal: Calendar,
    life: Lifecycle,
    metered: np.ndarray,
    recorded_multiplier: np.ndarray,
    over: OverCapacity,
    truth: TruthLog,
    events: EventLog,
) -> Bills:
    """Compute every bill of the bureau (see the module docstring)."""
    n, d = metered.shape
    starts, ends = cal.month_starts, month_ends(cal)
    m = len(starts)
    stable = life.stable(d)
    open_m = (life.open_day[:, None] < ends[None, :]) & (life.close_day[:, None] > starts[None, :])
    kwh = np.empty((n, m))
    for j in range(m):  # months, not customers: float64 sums without a float64 copy
        kwh[:, j] = metered[:, cal.month_slice(j)].sum(axis=1, dtype=np.float64)
    kwh = np.round(kwh, 2)
    peak = np.maximum.reduceat(metered, starts, axis=1).astype(np.float64)

    has_demand = np.isin(pop.cls, (COM, IND))
    demand = peak / 24.0 * rng.uniform(1.6, 2.4, (n, 1))
    demand = np.minimum(demand, pop.capacity[:, None] * rng.uniform(0.6, 0.95, (n, m)))
    over_m = np.zeros((n, m), dtype=bool)
    mm = np.arange(m)[None, :]
    over_m[over.rows] = (mm >= over.m0[:, None]) & (mm <= over.m1[:, None])
    demand[over.rows] = np.where(
        over_m[over.rows], pop.capacity[over.rows, None] * over.ratio[:, None], demand[over.rows]
    )
    demand = np.where(has_demand[:, None], np.round(demand, 1), np.nan)

    tariff = pop.tariff.copy()
    rows = truth.pick(rng, "tariff_invalid_for_class", stable)
    tariff[rows] = tf.INVALID_FOR_CLASS[pop.cls[rows]]
    severity = np.abs(1.0 - tf.PRICE[tariff[rows]] / tf.PRICE[pop.tariff[rows]])
    truth.add("tariff_invalid_for_class", rows, 0, d - 1, severity, tf.TARIFF_CODES[tariff[rows]])

    start_reg, end_reg = _registers(rng, cal, life, metered, kwh, recorded_multiplier)
    # billed kWh = (止度 − 起度) × 倍率, as the billing system computes it; in a meter
    # replacement month it is the sum over both meters (kept from the readings)
    replaced = np.flatnonzero(life.replace_day >= 0)
    two_meters = np.zeros((n, m), dtype=bool)
    two_meters[replaced, cal.month_of_day[life.replace_day[replaced]]] = True
    by_register = np.round((end_reg - start_reg) * recorded_multiplier[:, None], 2)
    kwh = np.where(two_meters, kwh, by_register)
    rows = truth.pick(rng, "dq_register_backwards", stable)
    mb = rng.integers(min(1, m - 1), m, len(rows))
    end_reg[rows, mb] = np.round(start_reg[rows, mb] - rng.uniform(5, 200, len(rows)), 2)
    kwh[rows, mb] = 0.0
    day = starts[mb] + (rng.random(len(rows)) * (ends[mb] - starts[mb])).astype(np.int64)
    events.add(rows, day, "ERC27")
    truth.add(
        "dq_register_backwards",
        rows,
        starts[mb],
        ends[mb] - 1,
        1.0,
        "示度下降 / register backwards",
    )

    energy = np.round(tf.energy_charge(tariff[:, None], kwh), 2)
    capacity = np.round(tf.capacity_charge(tariff, pop.capacity), 2)[:, None] * np.ones((1, m))
    amount = np.round(energy + capacity, 2)
    rows = truth.pick(rng, "bill_amount_mismatch", stable)
    mx = rng.integers(0, m, len(rows))
    factor = np.where(
        rng.random(len(rows)) < 0.5,
        rng.uniform(0.55, 0.9, len(rows)),
        rng.uniform(1.1, 1.45, len(rows)),
    )
    energy[rows, mx] = np.round(energy[rows, mx] * factor, 2)
    amount[rows, mx] = np.round(energy[rows, mx] + capacity[rows, mx], 2)
    truth.add(
        "bill_amount_mismatch",
        rows,
        starts[mx],
        ends[mx] - 1,
        np.abs(factor - 1.0),
        "电费 ≠ 电量 × 电价 / amount ≠ kWh × price",
    )

    month, row = np.nonzero(open_m.T)  # month-major: each month's bills are contiguous
    cols = {
        "start_reg": start_reg[row, month],
        "end_reg": end_reg[row, month],
        "multiplier": recorded_multiplier[row],
        "kwh": kwh[row, month],
        "max_demand_kw": demand[row, month],
        "tariff_code": tariff[row],
        "energy_charge": energy[row, month],
        "capacity_charge": capacity[row, month],
        "amount": amount[row, month],
    }
    return Bills(row=row, month=month, cols=cols, tariff=tariff)


def _registers(
    rng: np.random.Generator,
    cal: Calendar,
    life: Lifecycle,
    metered: np.ndarray,
    kwh: np.ndarray,
    multiplier: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Register index at the start and end of each month (dial units, 2 decimals)."""
    n, m = kwh.shape
    inc = kwh / multiplier[:, None]
    end = rng.uniform(100.0, 20_000.0, (n, 1)) + np.cumsum(inc, axis=1)
    start = end - inc
    rows = np.flatnonzero(life.replace_day >= 0)
    if len(rows):  # the new meter starts at zero on the replacement day
        r = life.replace_day[rows]
        mr = cal.month_of_day[r]
        after = np.where(np.arange(cal.days)[None, :] >= r[:, None], metered[rows], 0.0)
        post = np.add.reduceat(after, cal.month_starts, axis=1, dtype=np.float64)
        new_end = np.cumsum(post / multiplier[rows, None], axis=1)
        mm = np.arange(m)[None, :]
        end[rows] = np.where(mm >= mr[:, None], new_end, end[rows])
        shifted = np.concatenate([start[rows, :1], new_end[:, :-1]], axis=1)
        start[rows] = np.where(mm > mr[:, None], shifted, start[rows])
    return np.round(start, 2), np.round(end, 2)


def build_payments(
    rng: np.random.Generator, cal: Calendar, life: Lifecycle, bills: Bills, truth: TruthLog
) -> dict[str, np.ndarray]:
    """Payments (row, month, amount, paid day offset, due day offset) with injected arrears."""
    n, m = len(life.open_day), len(cal.month_labels)
    month_first = cal.dates[cal.month_starts].astype("datetime64[M]")
    due = (month_first + 1).astype("datetime64[D]") + DUE_DAYS
    k = len(bills.row)
    delay = -rng.integers(0, 26, k)
    late = rng.random(k) < 0.06
    delay[late] = rng.integers(1, 11, int(late.sum()))
    rows = truth.pick(rng, "arrears", life.stable(cal.days))
    ma = rng.integers(0, max(m - 2, 1), len(rows))
    unpaid = rng.random(len(rows)) < 0.6
    arrears_from = np.full(n, m, dtype=np.int64)
    arrears_from[rows] = ma
    mode = np.zeros(n, dtype=np.int8)
    mode[rows] = np.where(unpaid, 2, 1)
    in_arrears = bills.month >= arrears_from[bills.row]
    delay = np.where(in_arrears & (mode[bills.row] == 1), rng.integers(35, 121, k), delay)
    paid = due[bills.month] + delay
    keep = (bills.cols["amount"] > 0) & ~(in_arrears & (mode[bills.row] == 2))
    keep &= paid <= cal.dates[-1]
    start_day = cal.month_starts[ma]
    truth.add("arrears", rows, start_day, cal.days - 1, np.where(unpaid, 1.0, 0.5),
              np.where(unpaid, "欠费未缴 / unpaid", "逾期缴费 / paid > 30 days late"))  # fmt: skip
    return {
        "row": bills.row[keep],
        "month": bills.month[keep],
        "amount": bills.cols["amount"][keep],
        "paid_date": paid[keep],
        "due_date": due[bills.month[keep]],
    }
