"""The tariff catalogue (电价) and the charges it implies, vectorised over bills.

Approximate public Chongqing prices: residential tiered by monthly kWh (0.52 / 0.57 / 0.82
元/kWh at 200 and 400 kWh), general industry & commerce single-part (flat, or time-of-use
billed at its average price), large industry two-part (energy price plus a monthly capacity
charge per kVA of contracted capacity), agricultural production.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from audit_lib.data.schema import TARIFFS

RES_TIERED, COM_FLAT, COM_TOU, IND_TWO_PART, AGR_FLAT = range(5)

# code, 中文, English, kind, classes, price, tier2 kWh, tier2 price, tier3 kWh, tier3 price,
# capacity price (元/kVA·month)
CATALOGUE: tuple[tuple[object, ...], ...] = (
    ("RES-T", "居民生活阶梯电价", "Residential tiered", "tiered", "residential",
     0.52, 200.0, 0.57, 400.0, 0.82, None),
    ("COM-1", "一般工商业单一制电价", "General industry & commerce, flat", "flat",
     "commercial,industrial", 0.65, None, None, None, None, None),
    ("COM-TOU", "一般工商业分时电价", "General industry & commerce, time-of-use", "tou",
     "commercial,industrial", 0.68, None, None, None, None, None),
    ("IND-2", "大工业两部制电价", "Large industry, two-part", "two_part", "industrial",
     0.56, None, None, None, None, 28.0),
    ("AGR-1", "农业生产电价", "Agricultural production", "flat", "agricultural",
     0.47, None, None, None, None, None),
)  # fmt: skip

TARIFF_CODES = np.array([row[0] for row in CATALOGUE], dtype=object)
PRICE = np.array([row[5] for row in CATALOGUE], dtype=np.float64)
CAPACITY_PRICE = np.array([row[10] or 0.0 for row in CATALOGUE], dtype=np.float64)
TIERS = (200.0, 400.0, 0.52, 0.57, 0.82)
VALID_FROM = dt.date(2019, 7, 1)

# VALID[tariff, class]: classes in CUSTOMER_CLASSES order.
VALID = np.array(
    [
        [True, False, False, False],
        [False, True, True, False],
        [False, True, True, False],
        [False, False, True, False],
        [False, False, False, True],
    ]
)
# The invalid tariff a misapplied customer of each class gets (commerce on the cheap
# residential tariff is the classic revenue leak).
INVALID_FOR_CLASS = np.array([COM_FLAT, RES_TIERED, AGR_FLAT, RES_TIERED], dtype=np.int8)


def energy_charge(tariff: np.ndarray, kwh: np.ndarray) -> np.ndarray:
    """Energy charge in 元 of monthly ``kwh`` under each bill's ``tariff`` (unrounded)."""
    t2, t3, p1, p2, p3 = TIERS
    tiered = p1 * np.minimum(kwh, t2) + p2 * np.clip(kwh - t2, 0, t3 - t2)
    tiered += p3 * np.maximum(kwh - t3, 0)
    return np.where(tariff == RES_TIERED, tiered, kwh * PRICE[tariff])


def capacity_charge(tariff: np.ndarray, capacity_kva: np.ndarray) -> np.ndarray:
    """Monthly capacity (basic) charge in 元: two-part tariffs only."""
    return CAPACITY_PRICE[tariff] * capacity_kva


def tariffs_table() -> pa.Table:
    """The tariffs table of the mart."""
    cols = [c.name for c in TARIFFS.columns if c.name not in ("valid_from", "valid_to")]
    data = {name: [row[i] for row in CATALOGUE] for i, name in enumerate(cols)}
    data["valid_from"] = [VALID_FROM] * len(CATALOGUE)
    data["valid_to"] = [None] * len(CATALOGUE)
    return pa.table(data, schema=TARIFFS.arrow_schema())
