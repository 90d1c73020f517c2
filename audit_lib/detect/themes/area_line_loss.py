"""Station-area line loss (台区线损): loss rates, classes, localisation, and the multiplier
check that rests on the same balance.

Loss rate of an area = (supplied − consumed) ÷ supplied, where *supplied* is the area
transformer's meter and *consumed* the sum of its customers' AMI readings. A day counts only
when the supply was read and at least ``min_completeness`` of the open customers were read;
otherwise it is *not computable* (不可计算). Classes per area and month: qualified (合格),
high (高损), negative (负损), not computable.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numba
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from audit_lib.data.access import months_between
from audit_lib.detect.context import DetectionContext
from audit_lib.detect.findings import evidence_column
from audit_lib.detect.kernels.matrix_ops import deseasonalise, row_corr
from audit_lib.themes.catalogue import Theme

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


def area_balance(ctx: DetectionContext) -> AreaBalance:
    """Build the daily balance of every area of the context's bureau over its matrix days.

    Built once per context (:meth:`DetectionContext.shared`): the line-loss, multiplier and
    theft themes share it.
    """
    return ctx.shared("area_balance", lambda: _build_balance(ctx))


def _build_balance(ctx: DetectionContext) -> AreaBalance:
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


def supply_matrix(ctx: DetectionContext, areas: pd.Index, dates: pd.DatetimeIndex) -> np.ndarray:
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
        table = pq.ParquetFile(path, read_dictionary=["area_id"]).read(
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
    ctx: DetectionContext, theme: Theme | None = None, balance: AreaBalance | None = None
) -> pd.DataFrame:
    """Loss rate and class per area and month of the period (computable days only), by
    ``theme``'s parameters (default: the run's ``area_line_loss``) over ``balance`` (default:
    the context's :func:`area_balance`)."""
    theme = ctx.theme("area_line_loss") if theme is None else theme
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
            table["days"] < theme.param("min_days"),
            table["loss_rate"] >= theme.param("high_loss"),
            table["loss_rate"] <= theme.param("negative_loss"),
        ],
        ["not_computable", "high", "negative"],
        default="qualified",
    )
    table["loss_class"] = cls
    table["class_zh"] = table["loss_class"].map({k: v[0] for k, v in LOSS_CLASSES.items()})
    return table


def localise(
    ctx: DetectionContext, balance: AreaBalance, areas: np.ndarray, top: int = 3
) -> dict[str, list[dict[str, Any]]]:
    """Customers of ``areas`` whose (seasonally adjusted) consumption moves most against the
    area's daily loss rate: the likeliest sources of the loss."""
    rows = np.flatnonzero(np.isin(balance.customer_area, areas))
    if not len(rows):
        return {}
    shape, _ = deseasonalise(ctx.matrix.values[rows], np.zeros(len(rows), dtype=np.int64))
    loss = balance.loss_rate[balance.customer_area[rows]]
    corr = row_corr(shape, loss)
    frame = pd.DataFrame(
        {
            "area": balance.area_id[balance.customer_area[rows]],
            "cons_no": ctx.customers["cons_no"].to_numpy()[rows],
            "corr": corr,
        }
    ).dropna()
    frame = frame[frame["corr"] < -0.3].sort_values("corr").groupby("area").head(top)
    return {
        str(a): [
            {"cons_no": str(c), "corr": round(float(r), 3)}
            for c, r in zip(g["cons_no"], g["corr"], strict=True)
        ]
        for a, g in frame.groupby("area")
    }


def detect_area_line_loss(ctx: DetectionContext, theme: Theme) -> pd.DataFrame:
    """Areas with high or negative loss in any month of the period, with the customers that
    best explain the loss."""
    balance = area_balance(ctx)
    table = monthly_loss(ctx, theme, balance)
    bad = table[table["loss_class"].isin(["high", "negative"])]
    if bad.empty:
        return pd.DataFrame()
    per_area = bad.groupby("area_id").agg(
        months=("month", "count"),
        worst=("loss_rate", lambda s: s.iloc[np.argmax(np.abs(s.to_numpy()))]),
        first_month=("month", "min"),
        loss_class=("loss_class", lambda s: s.mode().iloc[0]),
    )
    period = table.groupby("area_id")[["supply_kwh", "consumed_kwh"]].sum()
    per_area = per_area.join(period)
    rows = pd.Index(balance.area_id).get_indexer(per_area.index)
    suspects = localise(ctx, balance, rows)
    out = pd.DataFrame({"entity": per_area.index.to_numpy(), "area_id": per_area.index.to_numpy()})
    out["station_id"] = out["area_id"].map(
        ctx.mart.areas(ctx.bureau).drop_duplicates("area_id").set_index("area_id")["station_id"]
    )
    worst = per_area["worst"].to_numpy()
    out["score"] = np.abs(worst) + per_area["months"].to_numpy() / 100
    lost = np.maximum((per_area["supply_kwh"] - per_area["consumed_kwh"]).to_numpy(), 0.0)
    out["kwh_at_risk"] = np.where(worst > 0, lost * (1 - 0.04 / np.maximum(worst, 0.04)), 0.0)
    out["money_at_risk"] = out["kwh_at_risk"] * float(ctx.prices.median())
    pct = pd.Series(np.round(worst * 100, 1)).astype(str)
    months = per_area["months"].astype(str).to_numpy()
    names = per_area["loss_class"].map({k: v for k, v in LOSS_CLASSES.items()})
    who = [", ".join(str(s["cons_no"]) for s in suspects.get(a, [])) for a in out["entity"]]
    out["reason_zh"] = [
        f"台区{n[0]}{m}个月，最高线损率{p}%" + (f"；疑似用户{w}" if w else "")
        for n, m, p, w in zip(names, months, pct, who, strict=True)
    ]
    out["reason_en"] = [
        f"{n[1]} in {m} months, worst loss rate {p}%" + (f"; suspects {w}" if w else "")
        for n, m, p, w in zip(names, months, pct, who, strict=True)
    ]
    out["evidence"] = evidence_column(
        [
            {
                "months": int(m),
                "worst_loss_rate": float(w),
                "first_month": f,
                "suspects": suspects.get(a, []),
            }
            for a, m, w, f in zip(
                out["entity"], per_area["months"], worst, per_area["first_month"], strict=True
            )
        ]
    )
    return out
