"""A bureau's data over a period, read once: the customers, their meters and alarms, and the
customers × days matrix with the days each account was open.

Themes, indicators and analyses of the same bureau and period share one :class:`BureauView`
(the detection context is one), so all of them together cost one matrix build.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import numba
import numpy as np
import pandas as pd

from audit_lib.data.access import Mart
from audit_lib.data.matrix import ConsumptionMatrix, build_matrix
from audit_lib.data.periods import months_between, to_date
from audit_lib.data.schema import CUSTOMER_CLASSES
from audit_lib.errors import DataError

T = TypeVar("T")


@dataclass
class BureauView:
    """A bureau of a mart over ``start``..``end`` (inclusive), each input read once.

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
    _shared: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _lock: threading.RLock = field(
        default_factory=threading.RLock, init=False, repr=False, compare=False
    )

    def shared(self, key: Any, build: Callable[[], T]) -> T:
        """``build()``, once per view and ``key``: an input several users of the view derive
        (the areas' energy balance, the replacement steps). A caller in another thread waits
        for the one building it instead of building it again."""
        with self._lock:
            if key not in self._shared:
                self._shared[key] = build()
            return self._shared[key]

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
    def period_columns(self) -> np.ndarray:
        """Bool per column of :attr:`matrix`: the day lies in ``start``..``end`` (not history)."""
        dates = self.matrix.dates
        return np.asarray((dates >= pd.Timestamp(self.start)) & (dates <= pd.Timestamp(self.end)))

    @cached_property
    def active(self) -> np.ndarray:
        """Bool per customer: the account's status is active (运行户)."""
        return np.asarray(self.customers["status"] == "active")

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
