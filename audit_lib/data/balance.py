"""Station-area energy balance (台区供售平衡) and monthly line loss (台区线损).

Loss rate of an area = (supplied − consumed) ÷ supplied, where *supplied* is the area
transformer's meter and *consumed* the sum of its customers' AMI readings. A day counts only
when the supply was read and at least :data:`MIN_COMPLETENESS` of the open customers were
read; otherwise it is *not computable* (不可计算). Classes per area and month: qualified (合格),
high (高损), negative (负损), not computable. The line-loss and multiplier themes, the
indicators and the analyses all read the balance from here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numba
import numpy as np
import pandas as pd
import pyarrow as pa

from audit_lib.data.integrity import open_parquet
from audit_lib.data.periods import months_between
from audit_lib.data.view import BureauView

LOSS_CLASSES = {
    "qualified": ("合格", "qualified"),
    "high": ("高损", "high loss"),
    "negative": ("负损", "negative loss"),
    "not_computable": ("不可计算", "not computable"),
}
MIN_COMPLETENESS = 0.98


@dataclass
class AreaBalance:
    """Daily energy balance of every area of a bureau (areas × days arrays).

    Attributes
    ----------
    area_id
        Area codes of the rows.
    dates
        Days of the columns.
    supply
        kWh through the transformer meter (NaN = not read).
    consumed
        Σ of the open customers' readings.
    completeness
        Share of open customers with a reading that day (1 when the area has none open).
    customer_area
        Row of :attr:`area_id` of every customer of the context (−1 = area unknown).
    """

    area_id: np.ndarray
    dates: pd.DatetimeIndex
    supply: np.ndarray
    consumed: np.ndarray
    completeness: np.ndarray
    customer_area: np.ndarray

    @cached_property
    def computable(self) -> np.ndarray:
        """Days whose loss can be computed."""
        return ~np.isnan(self.supply) & (self.supply > 0) & (self.completeness >= MIN_COMPLETENESS)

    @cached_property
    def loss_rate(self) -> np.ndarray:
        """Daily loss rate (NaN where not computable)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = (self.supply - self.consumed) / self.supply
        return np.where(self.computable, rate, np.nan)


def area_balance(view: BureauView) -> AreaBalance:
    """The daily balance of every area of the view's bureau over its matrix days.

    Built once per view (:meth:`~audit_lib.data.view.BureauView.shared`): the line-loss,
    multiplier and theft themes and the indicators share it.
    """
    return view.shared("area_balance", lambda: _build_balance(view))


def _build_balance(ctx: BureauView) -> AreaBalance:
    areas = ctx.mart.areas(ctx.bureau)["area_id"].drop_duplicates().to_numpy().astype(str)
    index = pd.Index(areas)
    cust_area = index.get_indexer(ctx.customers["area_id"].astype(str))
    dates = ctx.matrix.dates
    n_areas = len(areas)
    supply = supply_matrix(ctx, index, dates)
    consumed, read, opened = _area_sums(
        ctx.matrix.values, ctx.open_mask, cust_area.astype(np.int64), n_areas
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        completeness = np.where(opened > 0, read / opened, 1.0)
    return AreaBalance(areas, dates, supply, consumed, completeness, cust_area)


def supply_matrix(ctx: BureauView, areas: pd.Index, dates: pd.DatetimeIndex) -> np.ndarray:
    """(areas, days) kWh through each area's transformer meter (NaN = not read).

    Reads the bureau's ``area_supply`` files of the months of ``dates`` with Arrow, the area
    codes as the files' dictionaries (one lookup per dictionary entry, not per row), so no
    Python string per row is made. Rows of unknown areas or outside ``dates`` are left out;
    a repeated (area, day) keeps the value of the last row in file order (as a DuckDB scan
    of the same files assigned row by row would).
    """
    supply = np.full((len(areas), len(dates)), np.nan)
    if not len(dates) or not len(areas):
        return supply
    first = (dates[0].date() - dt.date(1970, 1, 1)).days
    months = months_between(dates[0].date(), dates[-1].date())
    for path in ctx.mart.files("area_supply", [ctx.bureau], months):
        table = open_parquet(path, read_dictionary=["area_id"]).read(
            columns=["area_id", "date", "supply_kwh"]
        )
        for batch in table.to_batches():
            rows = _dictionary_rows(batch.column(0), areas)
            cols = batch.column(1).cast(pa.int32()).fill_null(-1).to_numpy() - first
            kwh = batch.column(2).cast(pa.float64()).fill_null(np.nan).to_numpy()
            ok = (rows >= 0) & (cols >= 0) & (cols < len(dates)) & batch.column(1).is_valid()
            supply[rows[ok], cols[ok]] = kwh[ok]
    return supply


def _dictionary_rows(codes: pa.Array, areas: pd.Index) -> np.ndarray:
    """Row of ``areas`` of every entry of ``codes`` (−1: unknown or null)."""
    if not isinstance(codes, pa.DictionaryArray):
        codes = codes.dictionary_encode()
    known = areas.get_indexer(pd.Index(codes.dictionary.cast(pa.string()).to_pylist()))
    index = codes.indices.fill_null(-1).to_numpy().astype(np.int64)
    return np.where(index >= 0, known[np.maximum(index, 0)], -1)


@numba.njit(cache=True, nogil=True)
def _area_sums(
    values: np.ndarray, is_open: np.ndarray, area: np.ndarray, n_areas: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Per area and day: Σ kWh of open customers, open customers read, open customers.

    One pass over the matrix; customers with area −1 are left out.
    """
    rows, days = values.shape
    consumed = np.zeros((n_areas, days))
    read = np.zeros((n_areas, days))
    opened = np.zeros((n_areas, days))
    for i in range(rows):
        a = area[i]
        if a < 0:
            continue
        for j in range(days):
            if is_open[i, j]:
                opened[a, j] += 1.0
                v = values[i, j]
                if not np.isnan(v):
                    consumed[a, j] += v
                    read[a, j] += 1.0
    return consumed, read, opened


def monthly_loss(
    ctx: BureauView, limits: Mapping[str, float | int | str], balance: AreaBalance | None = None
) -> pd.DataFrame:
    """Loss rate and class per area and month of the period (computable days only) over
    ``balance`` (default: the view's :func:`area_balance`).

    ``limits`` classes a month: ``min_days`` computable days at least (else not computable),
    a loss rate from ``high_loss`` up is high (高损), down from ``negative_loss`` negative
    (负损), qualified (合格) between; the line-loss theme's parameters are such a mapping.
    """
    balance = area_balance(ctx) if balance is None else balance
    in_period = (balance.dates >= pd.Timestamp(ctx.start)) & (
        balance.dates <= pd.Timestamp(ctx.end)
    )
    months = balance.dates.to_period("M")
    frames = []
    for month in months[in_period].unique():
        cols = np.asarray((months == month) & in_period)
        ok = balance.computable[:, cols]
        supplied = np.where(ok, balance.supply[:, cols], 0.0).sum(axis=1)
        consumed = np.where(ok, balance.consumed[:, cols], 0.0).sum(axis=1)
        frames.append(
            pd.DataFrame(
                {
                    "area_id": balance.area_id,
                    "month": str(month),
                    "days": ok.sum(axis=1),
                    "supply_kwh": supplied,
                    "consumed_kwh": consumed,
                }
            )
        )
    table = pd.concat(frames, ignore_index=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        table["loss_rate"] = (table["supply_kwh"] - table["consumed_kwh"]) / table["supply_kwh"]
    cls = np.select(
        [
            table["days"] < float(limits["min_days"]),
            table["loss_rate"] >= float(limits["high_loss"]),
            table["loss_rate"] <= float(limits["negative_loss"]),
        ],
        ["not_computable", "high", "negative"],
        default="qualified",
    )
    table["loss_class"] = cls
    table["class_zh"] = table["loss_class"].map({k: v[0] for k, v in LOSS_CLASSES.items()})
    return table
