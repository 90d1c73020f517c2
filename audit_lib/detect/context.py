"""What every theme detector receives: the mart, a bureau, a period and cached inputs.

The customers × days matrix and the customers table are read once per context and shared by
every theme that needs them, so running all themes costs one matrix build.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import numba
import numpy as np
import pandas as pd

from audit_lib.data.access import Mart, months_between, to_date
from audit_lib.data.matrix import ConsumptionMatrix, build_matrix
from audit_lib.data.schema import CUSTOMER_CLASSES
from audit_lib.errors import DataError
from audit_lib.themes.catalogue import Theme, get_theme, with_params

T = TypeVar("T")


def parse_period(period: str) -> tuple[dt.date, dt.date]:
    """Parse ``2025-01..2025-12`` (months) or ``2025-01-01..2025-03-31`` (days).

    A single month ``2025-03`` means that month.

    Raises
    ------
    DataError
        If the text is not a period, naming the field ``period``.
    """
    parts = period.split("..")
    if len(parts) not in (1, 2) or not all(parts):
        raise DataError(f"not a period: {period!r} (expected 2025-01..2025-12)", field="period")
    first, last = parts[0], parts[-1]
    try:
        start = pd.Period(first, freq="M").start_time if len(first) == 7 else pd.Timestamp(first)
        end = pd.Period(last, freq="M").end_time if len(last) == 7 else pd.Timestamp(last)
    except (ValueError, TypeError) as exc:
        raise DataError(f"not a period: {period!r}", field="period") from exc
    if end < start:
        raise DataError(f"period ends before it starts: {period!r}", field="period")
    return start.date(), end.date()


@dataclass
class DetectionContext:
    """Inputs of one detection run: a bureau of a mart over ``start``..``end`` (inclusive).

    Parameters
    ----------
    mart
        The mart to read.
    bureau
        Bureau code.
    start, end
        The period (inclusive days).
    history_days
        Days of history before ``start`` loaded into the matrix, so "drop against own
        history" can look back even for a short period.
    """

    mart: Mart
    bureau: str
    start: dt.date
    end: dt.date
    history_days: int = 0
    overrides: Mapping[str, Mapping[str, float | int | str]] = field(default_factory=dict)
    """Theme parameters replaced for this run, by theme id (see :meth:`theme`)."""
    extras: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    """Side results a theme leaves for the caller (e.g. every customer's theft score)."""
    _shared: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _lock: threading.RLock = field(
        default_factory=threading.RLock, init=False, repr=False, compare=False
    )

    def shared(self, key: Any, build: Callable[[], T]) -> T:
        """``build()``, once per context and ``key``: an input several themes derive (the
        areas' energy balance, the replacement steps). A theme in another thread waits for the
        one building it instead of building it again."""
        with self._lock:
            if key not in self._shared:
                self._shared[key] = build()
            return self._shared[key]

    def theme(self, theme_id: str) -> Theme:
        """The catalogue theme with this run's parameters: the one a theme detector gets, and
        what a theme reads of another (the theft theme leaves the zero theme's runs and the
        multiplier theme's confirmed steps out of its score, by their parameters)."""
        return with_params(get_theme(theme_id), self.overrides.get(theme_id))

    def __post_init__(self) -> None:
        self.start = to_date(self.start, name="start")
        self.end = to_date(self.end, name="end")
        if self.end < self.start:
            raise DataError(f"period ends before it starts: {self.start}..{self.end}")

    @property
    def load_start(self) -> dt.date:
        """First day loaded (``start`` minus ``history_days``)."""
        return self.start - dt.timedelta(days=self.history_days)

    @property
    def months(self) -> list[str]:
        """``YYYY-MM`` months of the period."""
        return months_between(self.start, self.end)

    @cached_property
    def customers(self) -> pd.DataFrame:
        """The bureau's customers (first row kept for a repeated ``cons_no``)."""
        cust = self.mart.customers(self.bureau)
        return cust.drop_duplicates("cons_no").reset_index(drop=True)

    @cached_property
    def meters(self) -> pd.DataFrame:
        """The bureau's meters with their multipliers (倍率) and installation dates, read once."""
        return self.mart.meters(self.bureau)

    @cached_property
    def meter_events(self) -> pd.DataFrame:
        """The bureau's meter alarms (采集终端告警) in the months of the period, read once."""
        return self.mart.meter_events(self.bureau, self.months)

    @cached_property
    def loaded_meter_events(self) -> pd.DataFrame:
        """The bureau's meter alarms in every month of the matrix (history included): the
        alarm at a drop that began before the period corroborates it too."""
        loaded = months_between(self.load_start, self.end)
        if loaded == self.months:
            return self.meter_events
        return self.mart.meter_events(self.bureau, loaded)

    @cached_property
    def class_codes(self) -> np.ndarray:
        """Position of each customer's class in ``CUSTOMER_CLASSES`` (−1 = outside the list)."""
        codes = pd.Index(list(CUSTOMER_CLASSES)).get_indexer(pd.Index(self.customers["cust_class"]))
        return np.asarray(codes, dtype=np.int64)

    @cached_property
    def matrix(self) -> ConsumptionMatrix:
        """Daily kWh of the bureau's customers from ``load_start`` to ``end``, rows as
        :attr:`customers`; absurd days (a data error, :mod:`audit_lib.data.absurd`) are NaN
        for every theme and recorded in the matrix's ``absurd`` for the data-quality one."""
        return build_matrix(
            self.mart, self.bureau, self.load_start, self.end, self.customers["cons_no"]
        ).without_absurd()

    @cached_property
    def open_mask(self) -> np.ndarray:
        """(customers, days) bool: the account was open on that day of :attr:`matrix`
        (from its open date to the day before its close date; never without an open date)."""
        first = self.matrix.dates.values.astype("datetime64[D]")[0]
        days = len(self.matrix.dates)
        opened = np.asarray(self.customers["open_date"], dtype="datetime64[D]")
        closed = np.asarray(pd.to_datetime(self.customers["close_date"]), dtype="datetime64[D]")
        lo = np.where(np.isnat(opened), days, (opened - first).astype(np.int64))
        hi = np.where(np.isnat(closed), days, (closed - first).astype(np.int64))
        return _open_days(np.clip(lo, 0, days), np.clip(hi, 0, days), days)

    @cached_property
    def prices(self) -> pd.Series:
        """An indicative 元/kWh per customer (its tariff's first price), for money at risk."""
        tariffs = self.mart.tariffs().drop_duplicates("tariff_code", keep="last")
        price = tariffs.set_index("tariff_code")["price"]
        mapped = self.customers["tariff_code"].map(price)
        return pd.Series(mapped.fillna(price.median()).to_numpy(), index=self.customers["cons_no"])


@numba.njit(cache=True, nogil=True)
def _open_days(lo: np.ndarray, hi: np.ndarray, days: int) -> np.ndarray:  # pragma: no cover
    """Row ``i`` True on the columns ``lo[i]`` to ``hi[i] - 1`` (one pass, no temporaries)."""
    out = np.zeros((lo.size, days), dtype=np.bool_)
    for i in range(lo.size):
        for j in range(lo[i], hi[i]):
            out[i, j] = True
    return out
