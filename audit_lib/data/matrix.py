"""The customers × days consumption matrix (用电量矩阵), the form every detector works on.

:func:`build_matrix` reads a bureau's daily readings from the mart and scatters them into a
preallocated float32 array, one row per customer (in the order of the bureau's customers
table) and one column per day; missing readings are NaN. It never materialises one Python
string per reading: the ``arrow`` method reads ``cons_no`` as the Parquet dictionary, maps
each dictionary (not each row) to row positions and scatters row groups in parallel threads;
the ``duckdb`` method lets DuckDB join the readings to a customer index and hands back flat
cell positions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from audit_lib.data.absurd import clear_absurd
from audit_lib.data.access import Mart
from audit_lib.data.integrity import open_parquet
from audit_lib.data.keys import KeyLookup
from audit_lib.data.matrix_scan import (
    ScanLedger,
    arrow_scatter,
    duckdb_cells,
    finish_matrix,
    load_kernels,
    resolve_duplicates,
    scatter,
    settle_repeats,
    zeroed_cells,
)
from audit_lib.data.periods import DateLike, months_between, to_date
from audit_lib.data.schema import CONS_NO, DATE, KWH
from audit_lib.errors import DataError

Method = Literal["auto", "arrow", "duckdb"]


@dataclass(frozen=True, eq=False)
class ConsumptionMatrix:
    """Daily kWh of many customers: ``values[i, j]`` is customer ``cons_no[i]`` on ``dates[j]``.

    Attributes
    ----------
    values
        float32 array, customers × days; NaN where no reading was collected.
    cons_no
        Customer numbers (户号) of the rows, an array of str.
    dates
        The days of the columns (consecutive).
    duplicates
        Readings that hit a cell already filled (same customer and day); the cell holds the
        largest non-null value of its readings (independent of file order).
    orphans
        Readings whose ``cons_no`` is not in the bureau's customers table (ignored).
    ledger
        What the scan saw (repeated cells, orphan rows, the span of dates read), for the
        data-quality checks; ``None`` when the build did not keep it.
    absurd
        ``(cells, kwh)``: the absurd days (:mod:`audit_lib.data.absurd`) that
        :meth:`without_absurd` set to NaN, as flat positions (row × days + day) and the kWh
        each held; ``None`` when they were not cleared.
    """

    values: np.ndarray
    cons_no: np.ndarray
    dates: pd.DatetimeIndex
    duplicates: int = 0
    orphans: int = 0
    ledger: ScanLedger | None = None
    absurd: tuple[np.ndarray, np.ndarray] | None = None

    def __post_init__(self) -> None:
        if self.values.dtype != np.float32 or self.values.ndim != 2:
            raise DataError(f"matrix values must be 2-D float32, got {self.values.dtype}")
        if self.values.shape != (len(self.cons_no), len(self.dates)):
            raise DataError(
                f"matrix shape {self.values.shape} does not match "
                f"{len(self.cons_no)} customers × {len(self.dates)} days"
            )

    @property
    def shape(self) -> tuple[int, int]:
        """(customers, days)."""
        return (int(self.values.shape[0]), int(self.values.shape[1]))

    def index(self) -> pd.Index:
        """The customer numbers as a pandas Index (row labels)."""
        return pd.Index(self.cons_no, name=CONS_NO)

    def frame(self, *, dropna: bool = True) -> pd.DataFrame:
        """Long form: one row per customer and day with columns ``cons_no, date, kwh``."""
        n, d = self.shape
        rows = np.repeat(np.arange(n), d)
        days = np.tile(np.arange(d), n)
        kwh = self.values.ravel()
        if dropna:
            keep = ~np.isnan(kwh)
            rows, days, kwh = rows[keep], days[keep], kwh[keep]
        return pd.DataFrame(
            {CONS_NO: self.cons_no[rows], DATE: self.dates[days], KWH: kwh},
        )

    def without_absurd(self) -> ConsumptionMatrix:
        """This matrix with its absurd days (:func:`audit_lib.data.absurd.clear_absurd`) set to
        NaN in place (the values are shared, not copied) and recorded in ``absurd``.

        A shifted decimal or Wh read as kWh is a data error, not consumption: every theme
        reads the matrix without it, and the data-quality check reports it from the record.
        """
        if self.absurd is not None:
            return self
        return replace(self, absurd=clear_absurd(self.values))

    def select(self, mask: np.ndarray | Sequence[int] | Sequence[bool]) -> ConsumptionMatrix:
        """The rows picked by a boolean mask or an array of row positions."""
        pick = np.asarray(mask)
        if pick.dtype == bool and pick.shape != (self.shape[0],):
            raise DataError(f"mask has {pick.shape[0]} entries for {self.shape[0]} customers")
        return ConsumptionMatrix(self.values[pick], self.cons_no[pick], self.dates)

    def months(self) -> pd.DataFrame:
        """Monthly kWh per customer (sum of the collected days; NaN if none was collected).

        Returns
        -------
        DataFrame
            Index ``cons_no``, one float32 column per month (``pandas.Period``).
        """
        periods = self.dates.to_period("M")
        _, starts = np.unique(periods.asi8, return_index=True)
        observed = ~np.isnan(self.values)
        sums = np.add.reduceat(np.where(observed, self.values, 0.0), starts, axis=1)
        counts = np.add.reduceat(observed, starts, axis=1)
        sums = np.where(counts > 0, sums, np.nan).astype(np.float32)
        columns = pd.PeriodIndex(pd.Index(periods)[starts], freq="M")
        return pd.DataFrame(sums, index=self.index(), columns=columns)


def build_matrix(
    mart: Mart,
    bureau: str,
    start: DateLike,
    end: DateLike,
    customers: Iterable[str] | None = None,
    *,
    method: Method = "auto",
) -> ConsumptionMatrix:
    """Build the customers × days matrix of one bureau from the mart.

    Parameters
    ----------
    mart
        The mart to read.
    bureau
        Bureau code.
    start, end
        First and last day, inclusive.
    customers
        Restrict to these customer numbers, in this order (default: every customer of the
        bureau, in the order of its customers table).
    method
        ``arrow`` (dictionary scan, the default for ``auto``) or ``duckdb`` (join in DuckDB).

    Returns
    -------
    ConsumptionMatrix

    Raises
    ------
    DataError
        If the bureau has no customers table or the period is empty.
    """
    s, e = to_date(start, name="start"), to_date(end, name="end")
    dates = pd.date_range(s, e, freq="D")
    if len(dates) == 0:
        raise DataError(f"empty period {s}..{e}", field="end")
    given = None if customers is None else _object_array(customers)
    d = len(dates)
    expected = len(given) if given is not None else _customer_rows(mart, bureau)
    # beside the customer index: numba's loops and the zeroed cells (all-zero bits until
    # written; a written cell never has them, 0 kWh is stored as -0.0)
    with ThreadPoolExecutor(max_workers=2) as pool:
        loading = pool.submit(load_kernels)
        zeroing = pool.submit(zeroed_cells, expected * d)
        bureau_cons, lookup = _bureau_index(mart, bureau)
        loading.result()
        blank = zeroing.result()
    if given is None:
        rows = str_array(bureau_cons)
        to_row = np.arange(len(rows), dtype=np.int64)
    else:
        rows = given
        bureau_rows = np.asarray(bureau_cons.to_numpy(zero_copy_only=False), dtype=object)
        if len(rows) == len(bureau_rows) and np.array_equal(rows, bureau_rows):
            to_row = np.arange(len(rows), dtype=np.int64)  # the whole bureau, in table order
        else:
            picked = pd.Index(rows)
            if picked.has_duplicates:
                raise DataError("customers list repeats a cons_no", field=CONS_NO)
            to_row = np.asarray(picked.get_indexer(pd.Index(bureau_rows)), dtype=np.int64)
    files = mart.files("readings", [bureau], months_between(s, e))
    n = len(rows)
    # fewer rows than expected when the customers table repeats a cons_no
    flat = blank[: n * d] if n * d <= blank.size else zeroed_cells(n * d)
    start_day = int(np.datetime64(s, "D").astype(np.int64))
    ledger: ScanLedger | None = None
    if method == "duckdb":
        cells = duckdb_cells(mart, files, bureau_cons, to_row, start_day, d)
        mapped, orphans = scatter(cells, flat)
    else:  # row groups read and scattered by one thread per core
        ledger = arrow_scatter(files, bureau_cons, lookup, to_row, start_day, flat, d)
        mapped, orphans = ledger.mapped, ledger.orphans
    duplicates = mapped - finish_matrix(flat)
    if ledger is not None and ledger.repeat_cells.size == duplicates:
        ledger = replace(ledger, repeat_first=flat[ledger.repeat_cells])  # before settling
        settle_repeats(flat, ledger)  # only the repeated cells, from what the scan set aside
    elif duplicates:
        # the DuckDB method, or two threads wrote one cell at the same instant (the set-aside
        # readings then miss one): settle every repeated cell from a scan of the readings
        resolve_duplicates(mart, files, lookup, to_row, s, e, flat, d)
        ledger = None
    return ConsumptionMatrix(
        flat.reshape(n, d),
        rows if rows.dtype.kind == "U" else rows.astype(str),
        dates,
        duplicates=duplicates,
        orphans=orphans,
        ledger=ledger,
    )


def _object_array(values: Iterable[str]) -> np.ndarray:
    """The customer numbers as an object array (a pandas Series or array without a Python
    loop over its 10⁶ elements)."""
    if isinstance(values, pd.Series | pd.Index | np.ndarray):
        return np.asarray(values.to_numpy(dtype=object) if not isinstance(values, np.ndarray)
                          else values.astype(object, copy=False))  # fmt: skip
    return np.asarray(list(values), dtype=object)


def _customer_rows(mart: Mart, bureau: str) -> int:
    """Rows of the bureau's customers table, from the Parquet footers (no data read)."""
    return sum(open_parquet(f).metadata.num_rows for f in mart.files("customers", [bureau]))


def _bureau_index(mart: Mart, bureau: str) -> tuple[pa.Array, KeyLookup]:
    files = mart.files("customers", [bureau])
    if not files:
        raise DataError(f"bureau {bureau!r} has no customers in the mart", file=str(mart.root))
    cons = ds.dataset(files, format="parquet").to_table(columns=[CONS_NO]).column(0)
    cons = cons.combine_chunks()
    if pc.count_distinct(cons).as_py() != len(cons):
        # a repeated cons_no in the customers table keeps its first row
        first = ~pd.Index(
            np.asarray(cons.to_numpy(zero_copy_only=False), dtype=object)
        ).duplicated()
        cons = cons.filter(pa.array(first))
    return cons, KeyLookup(cons)


def str_array(values: pa.Array) -> np.ndarray:
    """A numpy ``str`` array of an Arrow string array without nulls.

    Fixed-width ASCII values (customer numbers) are converted as one block of bytes, not one
    Python string each.
    """
    if isinstance(values, pa.StringArray) and len(values) and values.null_count == 0:
        offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)
        offsets = offsets[values.offset : values.offset + len(values) + 1]
        width = int(offsets[1] - offsets[0])
        steps = np.diff(offsets)
        if width > 0 and steps.min() == width and steps.max() == width:
            raw = np.frombuffer(values.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
            if raw.min() > 0 and raw.max() < 128:  # ASCII: one byte per character
                chars = raw.reshape(-1, width).astype("<u4")  # UTF-32 code points
                return chars.view(f"<U{width}").reshape(-1)
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=object).astype(str)
