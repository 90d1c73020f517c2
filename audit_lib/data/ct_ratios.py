"""Standard instrument-transformer ratios: the multipliers (倍率) a real metering point can have.

A multiplier is CT ratio × PT ratio. CT rated primary currents follow the standard series
(GB/T 20840: 10, 12.5, 15, 20, 25, 30, 40, 50, 60, 75 A and decimal multiples, secondary
5 A); PTs bring 10 kV or 35 kV down to 100 V, and low-voltage customers have none.
"""

from __future__ import annotations

import numpy as np

_CT_PRIMARY = np.array([10, 12.5, 15, 20, 25, 30, 40, 50, 60, 75])
CT_PRIMARY_A = np.unique(np.concatenate([_CT_PRIMARY * 10.0**k for k in range(-1, 4)]))
PT_RATIOS = {0.4: 1.0, 10.0: 100.0, 35.0: 350.0}


def standard_multipliers() -> np.ndarray:
    """Every multiplier a standard CT (x/5 A) and PT (none, 10 kV/100 V, 35 kV/100 V) give."""
    ct = CT_PRIMARY_A / 5.0
    return np.unique(np.concatenate([ct * pt for pt in PT_RATIOS.values()]))


def pt_ratio(voltage_kv: np.ndarray) -> np.ndarray:
    """The PT ratio at each supply voltage (kV): 350 at 35 kV, 100 at 10 kV, 1 below."""
    return np.where(voltage_kv >= 35, 350.0, np.where(voltage_kv >= 10, 100.0, 1.0))


def nearest_standard(mult: np.ndarray, voltage_kv: np.ndarray) -> np.ndarray:
    """The standard multiplier nearest each of ``mult`` (in ratio) at the customer's supply
    voltage: a standard CT times the PT that voltage has. NaN where ``mult`` is not a
    positive number."""
    pt = pt_ratio(voltage_kv)
    log_ct = np.log(CT_PRIMARY_A / 5.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = np.log(mult / pt)
    i = np.searchsorted(log_ct, np.nan_to_num(x)).clip(1, len(log_ct) - 1)
    lower = np.abs(x - log_ct[i - 1]) <= np.abs(log_ct[i] - x)
    ct = np.exp(np.where(lower, log_ct[i - 1], log_ct[i]))
    return np.where(np.isfinite(x), np.round(ct * pt, 6), np.nan)
