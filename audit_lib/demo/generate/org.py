"""Organisation of one bureau: supply stations (供电所) → station areas (台区) → customers.

Small and medium customers share public transformers (公变, ~150 customers each); large
industry has a dedicated transformer (专变) of its own. Customers are sorted by area, so the
customers of an area are contiguous rows of every customers × days matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from audit_lib.demo.generate.population import Population
from audit_lib.demo.generate.tariffs import IND_TWO_PART

AREAS_PER_STATION = 40
TRANSFORMER_KVA = np.array([100, 200, 315, 400, 500, 630, 800, 1000, 1250], dtype=float)


@dataclass
class Org:
    """Areas and stations of one bureau; customers are sorted by ``area_of``."""

    area_of: np.ndarray  # int64 area index per customer (non-decreasing)
    area_starts: np.ndarray  # first customer row of each area
    dedicated: np.ndarray  # bool per area: 专变
    transformer_kva: np.ndarray  # float64 per area
    station_of_area: np.ndarray  # int64 per area
    n_stations: int

    @property
    def n_areas(self) -> int:
        """Number of station areas."""
        return len(self.area_starts)


def digits(prefix: str, seq: np.ndarray, width: int) -> pa.Array:
    """Strings ``prefix`` + zero-padded ``seq`` (vectorised)."""
    padded = pc.utf8_lpad(pa.array(seq, type=pa.int64()).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, padded, "")


def cons_numbers(bureau_index: int, rows: np.ndarray) -> pa.Array:
    """City-wide unique 10-digit customer numbers: ``5`` + bureau (2 digits) + row (7)."""
    return digits(f"5{bureau_index + 1:02d}", rows, 7)


def build_org(rng: np.random.Generator, pop: Population) -> tuple[Population, Org]:
    """Group customers into areas and areas into stations; return customers sorted by area."""
    n = len(pop)
    dedicated_cust = pop.tariff == IND_TWO_PART
    public = np.flatnonzero(~dedicated_cust)
    rng.shuffle(public)
    sizes = rng.normal(150.0, 60.0, n // 15 + 2).clip(15, 400).astype(np.int64)
    edges = np.cumsum(sizes)
    raw = np.empty(n, dtype=np.int64)
    raw[public] = np.searchsorted(edges, np.arange(len(public)), side="right")
    n_public = int(raw[public].max()) + 1 if len(public) else 0
    ded_rows = np.flatnonzero(dedicated_cust)
    raw[ded_rows] = n_public + np.arange(len(ded_rows))
    n_areas = n_public + len(ded_rows)
    new_id = rng.permutation(n_areas)
    area = new_id[raw]
    order = np.argsort(area, kind="stable")
    pop = pop.take(order)
    area_of = area[order]
    dedicated = np.zeros(n_areas, dtype=bool)
    dedicated[new_id[n_public:]] = True
    load = np.bincount(area_of, weights=pop.capacity, minlength=n_areas)
    idx = np.searchsorted(TRANSFORMER_KVA, load * 0.35).clip(0, len(TRANSFORMER_KVA) - 1)
    kva = np.where(dedicated, load, TRANSFORMER_KVA[idx])
    n_stations = max(1, -(-n_areas // AREAS_PER_STATION))
    return pop, Org(
        area_of=area_of,
        area_starts=np.searchsorted(area_of, np.arange(n_areas)),
        dedicated=dedicated,
        transformer_kva=kva,
        station_of_area=np.arange(n_areas) * n_stations // n_areas,
        n_stations=n_stations,
    )
