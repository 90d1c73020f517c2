"""Customers of one bureau: class, industry, capacity, voltage, multiplier, tariff, base load.

Everything is drawn as arrays over the customers of a bureau (no loop over customers).
Classes are indices into :data:`audit_lib.data.schema.CUSTOMER_CLASSES`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit_lib.data.ct_ratios import pt_ratio
from audit_lib.demo.generate.tariffs import (
    AGR_FLAT,
    COM_FLAT,
    COM_TOU,
    IND_TWO_PART,
    RES_TIERED,
)

RES, COM, IND, AGR = 0, 1, 2, 3

INDUSTRIES: tuple[tuple[str, ...], ...] = (
    ("urban_household", "rural_household"),
    ("retail", "catering", "office", "hotel", "public_service"),
    ("manufacturing", "chemical", "metallurgy", "building_materials", "electronics"),
    ("irrigation", "farming", "aquaculture"),
)
LARGE_INDUSTRY_KVA = (315, 400, 500, 630, 800, 1000, 1250, 1600, 2000, 2500, 3150, 4000, 5000)
LV_CT_RATIOS = np.array([10, 15, 20, 30, 40, 50, 60, 80, 100, 150, 200, 300, 400], dtype=float)
HV_CT_RATIOS = np.array([2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 40, 60, 80, 100], dtype=float)


@dataclass
class Population:
    """Per-customer attributes of one bureau (arrays of equal length)."""

    cls: np.ndarray  # int8 class index
    industry: np.ndarray  # object array of industry codes
    tariff: np.ndarray  # int8 index into tariffs.TARIFF_CODES
    capacity: np.ndarray  # float64 kVA
    voltage: np.ndarray  # float64 kV
    multiplier: np.ndarray  # float64 physical CT x PT ratio
    base: np.ndarray  # float32 mean daily kWh
    summer: np.ndarray  # float32 sensitivity to the summer (air-conditioning) peak
    winter: np.ndarray  # float32 sensitivity to the winter peak
    noise: np.ndarray  # float32 sd of daily log-noise
    open_day: np.ndarray  # int64 day index of account opening (negative = before the period)

    def __len__(self) -> int:
        return len(self.cls)

    def take(self, order: np.ndarray) -> Population:
        """The same customers in another order."""
        return Population(**{k: v[order] for k, v in vars(self).items()})


def class_mix(urban: bool) -> np.ndarray:
    """Shares of residential, commercial, industrial and agricultural customers in an urban
    core bureau (主城区) or another."""
    if urban:
        return np.array([0.885, 0.085, 0.022, 0.008])
    return np.array([0.875, 0.065, 0.025, 0.035])


def draw_population(rng: np.random.Generator, n: int, urban: bool) -> Population:
    """Draw ``n`` customers of a bureau of the urban core or not (unsorted; see ``org``)."""
    cls = rng.choice(4, size=n, p=class_mix(urban)).astype(np.int8)
    capacity = _draw_capacity(rng, cls)
    large = (cls == IND) & (capacity >= 315)
    industry = _draw_industry(rng, cls, rural_share=0.15 if urban else 0.6)
    tariff = np.select(
        [cls == RES, (cls == COM) & (capacity < 100), cls == COM, large, cls == IND],
        [RES_TIERED, COM_FLAT, COM_TOU, IND_TWO_PART, COM_FLAT],
        AGR_FLAT,
    ).astype(np.int8)
    voltage = np.select(
        [cls == RES, large & (capacity >= 5000), large | (capacity >= 630)],
        [0.22, 35.0, 10.0],
        0.38,
    )
    load_factor = np.select(
        [cls == COM, cls == IND, cls == AGR],
        [rng.uniform(0.06, 0.2, n), rng.uniform(0.12, 0.4, n), rng.uniform(0.03, 0.12, n)],
        0.0,
    )
    res_base = rng.lognormal(np.log(4.8), 0.55, n) * np.where(industry == "rural_household", 0.7, 1)
    base = np.where(cls == RES, res_base, capacity * 24.0 * load_factor).astype(np.float32)
    lo_s, hi_s = np.array([0.3, 0.3, 0.0, 0.2]), np.array([1.3, 0.9, 0.25, 1.0])
    lo_w, hi_w = np.array([0.1, 0.05, 0.0, 0.0]), np.array([0.6, 0.3, 0.1, 0.1])
    u = rng.random((2, n))
    years_open = rng.exponential(8.0, n).clip(0.1, 30.0)
    return Population(
        cls=cls,
        industry=industry,
        tariff=tariff,
        capacity=capacity,
        voltage=voltage,
        multiplier=_physical_multiplier(cls, capacity, voltage),
        base=base,
        summer=(lo_s[cls] + u[0] * (hi_s - lo_s)[cls]).astype(np.float32),
        winter=(lo_w[cls] + u[1] * (hi_w - lo_w)[cls]).astype(np.float32),
        noise=np.array([0.22, 0.15, 0.12, 0.3], dtype=np.float32)[cls],
        open_day=-np.ceil(years_open * 365.25).astype(np.int64),
    )


def _draw_capacity(rng: np.random.Generator, cls: np.ndarray) -> np.ndarray:
    n = len(cls)
    res = rng.choice([4.0, 6.0, 8.0, 10.0, 12.0], size=n, p=[0.1, 0.3, 0.35, 0.15, 0.1])
    com = np.round(rng.lognormal(np.log(30.0), 0.9, n).clip(5, 1000))
    small_ind = np.round(rng.lognormal(np.log(80.0), 0.6, n).clip(10, 250))
    large_ind = rng.choice(np.array(LARGE_INDUSTRY_KVA, dtype=float), size=n)
    ind = np.where(rng.random(n) < 0.4, large_ind, small_ind)
    agr = np.round(rng.lognormal(np.log(15.0), 0.6, n).clip(3, 100))
    return np.choose(cls, [res, com, ind, agr]).astype(np.float64)


def _draw_industry(rng: np.random.Generator, cls: np.ndarray, rural_share: float) -> np.ndarray:
    out = np.empty(len(cls), dtype=object)
    for c, codes in enumerate(INDUSTRIES):  # four classes, not customers
        rows = np.flatnonzero(cls == c)
        if c == RES:
            p = np.array([1 - rural_share, rural_share])
        else:
            p = np.full(len(codes), 1 / len(codes))
        out[rows] = np.array(codes, dtype=object)[rng.choice(len(codes), size=len(rows), p=p)]
    return out


def _physical_multiplier(cls: np.ndarray, capacity: np.ndarray, voltage: np.ndarray) -> np.ndarray:
    """CT x PT ratio: direct meters (1) for small loads, CTs above 50 kVA, PTs at 10/35 kV."""
    amps_lv = capacity * 1.52 * 1.2 / 5.0
    lv = LV_CT_RATIOS[np.searchsorted(LV_CT_RATIOS, amps_lv).clip(0, len(LV_CT_RATIOS) - 1)]
    amps_hv = capacity / (np.sqrt(3) * voltage.clip(10, None)) * 1.2 / 5.0
    hv = HV_CT_RATIOS[np.searchsorted(HV_CT_RATIOS, amps_hv).clip(0, len(HV_CT_RATIOS) - 1)]
    mult = np.where(voltage >= 10, hv * pt_ratio(voltage), np.where(capacity > 50, lv, 1.0))
    return np.where(cls == RES, 1.0, mult)
