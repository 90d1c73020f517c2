"""Reading a bureau's readings into cells of the customers × days matrix.

:func:`arrow_scatter` reads the Parquet row groups in a thread pool with ``cons_no`` kept as
the files' dictionaries (one lookup per dictionary, not per row) and writes each batch into
the matrix with one compiled loop (numba, no GIL). A reading that hits a cell already written
is not written but set aside (cell, kWh); :func:`settle_repeats` then gives those few cells the
largest value of their readings, and the :class:`ScanLedger` keeps them (and the rows that fit
no row of the matrix) for the duplicate and orphan checks. :func:`duckdb_cells` lets DuckDB
join the readings to a customer index and yields (flat cell, kWh, orphan rows) batches for
:func:`scatter`. :func:`finish_matrix` turns untouched cells into NaN;
:func:`resolve_duplicates` settles repeated cells with one DuckDB GROUP BY over every reading
(the DuckDB method's way, and the arrow method's fallback).

Cells start as all-zero bits and a reading of 0 kWh is written as -0.0, so a written cell
never has all-zero bits: that tells untouched cells from written ones without a second array.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from audit_lib.data.access import Mart
from audit_lib.data.integrity import open_parquet, read_row_group
from audit_lib.data.keys import KeyLookup
from audit_lib.data.schema import CONS_NO, DATE, KWH

BATCH_ROWS = 1 << 20

Cells = Iterator[tuple[np.ndarray, np.ndarray, int]]


def scatter(cells: Cells, flat: np.ndarray) -> tuple[int, int]:
    """Write every (cell, kWh) batch into ``flat``; return (rows mapped, orphan rows)."""
    mapped = orphans = 0
    for cell, kwh, n_orphans in cells:
        flat[cell] = np.where(kwh == 0, np.float32(-0.0), kwh)
        mapped += cell.size
        orphans += n_orphans
    return mapped, orphans


def resolve_duplicates(
    mart: Mart,
    files: list[str],
    lookup: KeyLookup,
    to_row: np.ndarray,
    start: dt.date,
    end: dt.date,
    flat: np.ndarray,
    days: int,
) -> None:
    """Give every duplicated (customer, day) cell the largest non-null value of its rows."""
    listing = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    cur = mart.con.cursor()
    try:
        dup = cur.sql(
            f"""SELECT {CONS_NO}, ({DATE} - ?::DATE)::INTEGER AS day, max({KWH})::FLOAT AS kwh
            FROM read_parquet({listing}) WHERE {DATE} BETWEEN ? AND ?
            GROUP BY ALL HAVING count(*) > 1""",
            params=[start, start, end],
        ).to_arrow_table()
    finally:
        cur.close()
    known = lookup.positions(dup.column(0).combine_chunks())
    row = np.where(known >= 0, to_row[known], -1)
    keep = row >= 0
    cell = row[keep] * days + dup.column(1).to_numpy()[keep]
    flat[cell] = dup.column(2).to_numpy(zero_copy_only=False).astype(np.float32)[keep]


@dataclass(frozen=True, eq=False)
class ScanLedger:
    """What :func:`arrow_scatter` saw besides the values it placed.

    Attributes
    ----------
    mapped
        Readings written into (or set aside for) a cell of the matrix.
    orphans
        Readings of no customer of the bureau, or without a ``cons_no`` or a date.
    repeat_cells, repeat_kwh
        One entry per reading that hit a cell already written (flat cell, its kWh, NaN for
        null), in no particular order; the cell kept the first value written.
    strays
        ``cons_no``, ``date`` and ``kwh`` of the orphan readings (nulls included).
    outside
        Readings of wanted customers dated outside the matrix's days (not placed).
    unwanted
        Readings of customers of the bureau that are not rows of the matrix.
    first_day, last_day
        Earliest and latest date (days since 1970-01-01) of every reading read; ``None``
        when nothing was read.
    files
        The readings files scanned.
    repeat_first
        The first value written in each cell of ``repeat_cells`` (same order), kept by
        :func:`~audit_lib.data.matrix.build_matrix` before :func:`settle_repeats`.
    """

    mapped: int
    orphans: int
    repeat_cells: np.ndarray
    repeat_kwh: np.ndarray
    strays: pa.Table
    outside: int = 0
    unwanted: int = 0
    first_day: int | None = None
    last_day: int | None = None
    files: tuple[str, ...] = ()
    repeat_first: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def repeated(self) -> tuple[np.ndarray, np.ndarray]:
        """(flat cell, readings) of every cell hit by more than one reading, cells ascending."""
        cells, extra = np.unique(self.repeat_cells, return_counts=True)
        return cells, extra + 1


def settle_repeats(flat: np.ndarray, ledger: ScanLedger) -> None:
    """Give every repeated cell the largest non-null value of its readings.

    Call after :func:`finish_matrix`: each repeated cell holds its first reading (NaN for a
    null) and the ledger the others. NaN (null) readings count only when a cell has nothing
    else; a zero comes out as +0.0.
    """
    if not ledger.repeat_cells.size:
        return
    order = np.argsort(ledger.repeat_cells, kind="stable")
    cells = ledger.repeat_cells[order]
    values = ledger.repeat_kwh[order]
    starts = np.flatnonzero(np.r_[True, cells[1:] != cells[:-1]])
    others = np.fmax.reduceat(values, starts)
    first = cells[starts]
    flat[first] = np.fmax(flat[first], others) + np.float32(0.0)  # -0.0 → +0.0


def arrow_scatter(
    files: list[str],
    customers: pa.Array,
    lookup: KeyLookup,
    to_row: np.ndarray,
    start_day: int,
    flat: np.ndarray,
    days: int,
    *,
    threads: int | None = None,
) -> ScanLedger:
    """Scatter every reading of ``files`` into ``flat``; return what the scan saw.

    A reading whose cell is already written is set aside in the ledger (see
    :func:`settle_repeats`), so the matrix does not depend on which thread came first.

    Parameters
    ----------
    files
        Readings Parquet files.
    customers, lookup, to_row
        The customers table's ``cons_no`` (no repeats) and its lookup; ``to_row`` maps a
        position in the customers table to a row of the matrix (-1: not wanted).
    start_day
        Days since 1970-01-01 of the first column.
    flat
        The matrix, customers × ``days`` float32, raveled; cells start with all-zero bits.
    days
        Columns of the matrix.
    threads
        Worker threads (default: one per CPU); each reads and scatters whole row groups.
    """
    tasks = [(f, g) for f in files for g in range(open_parquet(f).metadata.num_row_groups)]
    if not tasks:
        return _merge_ledgers([])

    def run(task: tuple[str, int]) -> ScanLedger:
        return _scan_group(task, customers, lookup, to_row, start_day, flat, days)

    workers = max(1, min(len(tasks), threads or os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return replace(_merge_ledgers(list(pool.map(run, tasks))), files=tuple(files))


_STRAY_SCHEMA = pa.schema([(CONS_NO, pa.string()), (DATE, pa.date32()), (KWH, pa.float32())])
# counters of the scatter loop
_MAPPED, _ORPHANS, _OUTSIDE, _UNWANTED, _FIRST, _LAST = range(6)
_NO_FIRST, _NO_LAST = np.iinfo(np.int64).max, np.iinfo(np.int64).min


def _scan_group(
    task: tuple[str, int],
    customers: pa.Array,
    lookup: KeyLookup,
    to_row: np.ndarray,
    start_day: int,
    flat: np.ndarray,
    days: int,
) -> ScanLedger:
    """Read one row group and scatter it (runs in a worker thread)."""
    path, group = task
    table = read_row_group(
        path, group, open={"read_dictionary": [CONS_NO]}, columns=[CONS_NO, DATE, KWH],
        use_threads=False,
    )  # fmt: skip
    kernel = _kernels()[0]
    counts = np.array([0, 0, 0, 0, _NO_FIRST, _NO_LAST], dtype=np.int64)
    cells: list[np.ndarray] = []
    kwh: list[np.ndarray] = []
    strays: list[pa.Table] = []
    cached: tuple[pa.Array, np.ndarray] | None = None
    for batch in table.to_batches():
        batch, dropped = _valid_rows(batch)
        strays.append(dropped)
        cons = batch.column(0)
        if not isinstance(cons, pa.DictionaryArray):
            cons = cons.dictionary_encode()
        if cached is None or not cached[0].equals(cons.dictionary):
            known = _positions(cons.dictionary, customers, lookup)
            # row of the matrix per dictionary entry: -1 not wanted, -2 not a customer
            cached = (cons.dictionary, np.where(known >= 0, to_row[known], -2))
        codes = cons.indices.to_numpy().astype(np.int32, copy=False)
        rep_cell = np.empty(len(codes), dtype=np.int64)  # pages touched only when written
        rep_kwh = np.empty(len(codes), dtype=np.float32)
        orphans = counts[_ORPHANS]
        n_rep = kernel(
            flat, cached[1], codes, batch.column(1).view(pa.int32()).to_numpy(),
            *_float32_buffers(batch.column(2)), start_day, days, rep_cell, rep_kwh, counts,
        )  # fmt: skip
        cells.append(rep_cell[:n_rep].copy())
        kwh.append(rep_kwh[:n_rep].copy())
        if counts[_ORPHANS] > orphans:
            stray = pa.array(np.flatnonzero(cached[1][codes] == -2))
            keys = cons.take(stray).cast(pa.string())
            kwh_of = batch.column(2).take(stray).cast(pa.float32())
            strays.append(
                pa.table([keys, batch.column(1).take(stray), kwh_of], schema=_STRAY_SCHEMA)
            )
    stray_table = pa.concat_tables([_STRAY_SCHEMA.empty_table(), *strays])
    dropped_rows = sum(t.num_rows for t in strays) - int(counts[_ORPHANS])
    return ScanLedger(
        mapped=int(counts[_MAPPED]),
        orphans=int(counts[_ORPHANS]) + dropped_rows,
        repeat_cells=np.concatenate([np.zeros(0, np.int64), *cells]),
        repeat_kwh=np.concatenate([np.zeros(0, np.float32), *kwh]),
        strays=stray_table,
        outside=int(counts[_OUTSIDE]),
        unwanted=int(counts[_UNWANTED]),
        first_day=_day_or_none(counts[_FIRST], _NO_FIRST, stray_table, min),
        last_day=_day_or_none(counts[_LAST], _NO_LAST, stray_table, max),
    )


def _day_or_none(day: int, none: int, strays: pa.Table, pick: Any) -> int | None:
    """The kernel's first (last) date combined with the null-keyed rows' dates."""
    days = [int(day)] if day != none else []
    valid = strays.column(1).drop_null()
    if len(valid):
        days.append(int(pick(valid.cast(pa.int32()).to_numpy())))
    return pick(days) if days else None


def _merge_ledgers(parts: list[ScanLedger]) -> ScanLedger:
    """One ledger of the row groups' ledgers."""
    firsts = [p.first_day for p in parts if p.first_day is not None]
    lasts = [p.last_day for p in parts if p.last_day is not None]
    return ScanLedger(
        mapped=sum(p.mapped for p in parts),
        orphans=sum(p.orphans for p in parts),
        repeat_cells=np.concatenate([np.zeros(0, np.int64), *(p.repeat_cells for p in parts)]),
        repeat_kwh=np.concatenate([np.zeros(0, np.float32), *(p.repeat_kwh for p in parts)]),
        strays=pa.concat_tables([_STRAY_SCHEMA.empty_table(), *(p.strays for p in parts)]),
        outside=sum(p.outside for p in parts),
        unwanted=sum(p.unwanted for p in parts),
        first_day=min(firsts) if firsts else None,
        last_day=max(lasts) if lasts else None,
    )


def _positions(values: pa.Array, customers: pa.Array, lookup: KeyLookup) -> np.ndarray:
    """Position of each value in ``customers`` (-1: none); a run of the table is found at once.

    Readings written in customers-table order give row groups whose dictionary is a slice of
    the customers table: one lookup of the first value and one comparison settle it.
    """
    first = int(lookup.positions(values.slice(0, 1))[0]) if len(values) else -1
    if first >= 0 and customers.slice(first, len(values)).equals(values):
        return np.arange(first, first + len(values), dtype=np.int64)
    return lookup.positions(values)


def _float32_buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray, int]:
    """The values, validity bitmap (empty: no nulls) and bit offset of a float array, no copy."""
    if values.type != pa.float32():
        values = values.cast(pa.float32())
    validity, data = values.buffers()[:2]
    floats = np.frombuffer(data, dtype=np.float32)[values.offset : values.offset + len(values)]
    if values.null_count == 0 or validity is None:
        return floats, np.empty(0, dtype=np.uint8), 0
    return floats, np.frombuffer(validity, dtype=np.uint8), values.offset


def _valid_rows(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, pa.Table]:
    """Split off rows without a ``cons_no`` or date (rare, orphans): (kept, their keys)."""
    if batch.column(0).null_count == 0 and batch.column(1).null_count == 0:
        return batch, _STRAY_SCHEMA.empty_table()
    keep = pc.and_(pc.is_valid(batch.column(0)), pc.is_valid(batch.column(1)))
    dropped = batch.filter(pc.invert(keep))
    keys = pa.table(
        [
            dropped.column(0).cast(pa.string()),
            dropped.column(1),
            dropped.column(2).cast(pa.float32()),
        ],
        schema=_STRAY_SCHEMA,
    )
    return batch.filter(keep), keys


def zeroed_cells(size: int, *, threads: int | None = None) -> np.ndarray:
    """A float32 array of ``size`` zeros, its pages written now by parallel threads.

    Faulting the pages in up front (memset, no GIL) costs less than letting the scatter
    loop fault them one by one.
    """
    flat = np.empty(size, dtype=np.float32)
    parts = max(1, min(threads or os.cpu_count() or 1, size // (1 << 22) or 1))
    bounds = np.linspace(0, size, parts + 1).astype(np.int64)

    def fill(i: int) -> None:
        flat[bounds[i] : bounds[i + 1]] = 0

    with ThreadPoolExecutor(max_workers=parts) as pool:
        list(pool.map(fill, range(parts)))
    return flat


def finish_matrix(flat: np.ndarray, *, threads: int | None = None) -> int:
    """Untouched cells (all-zero bits) become NaN and -0.0 becomes 0.0; return cells written."""
    bits = flat.view(np.int32)
    parts = max(1, min(threads or os.cpu_count() or 1, bits.size // (1 << 20) or 1))
    bounds = np.linspace(0, bits.size, parts + 1).astype(np.int64)
    kernel = _kernels()[1]
    with ThreadPoolExecutor(max_workers=parts) as pool:
        written = pool.map(lambda i: kernel(bits[bounds[i] : bounds[i + 1]]), range(parts))
        return int(sum(written))


def load_kernels() -> None:
    """Compile or load the numba loops now (e.g. in a thread while other work runs)."""
    _kernels()


@functools.cache
def _kernels() -> tuple[Any, Any]:
    """The compiled loops (numba, cached on disk: compiled once per machine, not per process)."""
    from numba import njit

    compile_ = njit(nogil=True, cache=True)
    return compile_(_scatter_rows), compile_(_finish_bits)


_NAN_BITS = np.int32(0x7FC00000)
_MINUS_ZERO_BITS = np.int32(-(2**31))
_MINUS_ZERO = np.float32(-0.0)
_NAN = np.float32(np.nan)


def _scatter_rows(
    flat: np.ndarray,
    row_of: np.ndarray,
    codes: np.ndarray,
    dates: np.ndarray,
    kwh: np.ndarray,
    valid: np.ndarray,
    valid_offset: int,
    start_day: int,
    days: int,
    rep_cell: np.ndarray,
    rep_kwh: np.ndarray,
    counts: np.ndarray,
) -> int:
    """Write each reading into its cell (compiled by :func:`_kernels`).

    ``valid`` is the Arrow validity bitmap of ``kwh`` (empty: no nulls); a null is NaN. A
    reading whose cell is already written (not all-zero bits) goes to ``rep_cell`` /
    ``rep_kwh`` instead; returns how many did. ``counts`` accumulates (mapped, orphans,
    outside the days, not wanted, first date, last date).
    """
    bits = flat.view(np.int32)
    repeats = mapped = orphans = outside = unwanted = 0
    first, last = counts[4], counts[5]
    for i in range(codes.size):
        date = dates[i]
        first = min(first, date)
        last = max(last, date)
        row = row_of[codes[i]]
        if row < 0:
            if row == -2:
                orphans += 1
            else:
                unwanted += 1
            continue
        day = date - start_day
        if day < 0 or day >= days:
            outside += 1
            continue
        value = kwh[i]
        if valid.size and not (valid[(valid_offset + i) >> 3] >> ((valid_offset + i) & 7)) & 1:
            value = _NAN
        cell = row * days + day
        if bits[cell] != 0:  # written before: set aside, settled after the scan
            rep_cell[repeats] = cell
            rep_kwh[repeats] = value
            repeats += 1
        else:
            flat[cell] = value if value != 0 else _MINUS_ZERO
        mapped += 1
    counts[0] += mapped
    counts[1] += orphans
    counts[2] += outside
    counts[3] += unwanted
    counts[4], counts[5] = first, last
    return repeats


def _finish_bits(bits: np.ndarray) -> int:
    """All-zero bits → NaN, -0.0 → 0.0 (compiled by :func:`_kernels`); cells written."""
    written = 0
    for i in range(bits.size):
        b = bits[i]
        if b == 0:
            bits[i] = _NAN_BITS
        else:
            written += 1
            if b == _MINUS_ZERO_BITS:
                bits[i] = 0
    return written


def duckdb_cells(
    mart: Mart,
    files: list[str],
    cons: pa.Array,
    to_row: np.ndarray,
    start_day: int,
    days: int,
) -> Cells:
    """Yield (flat cell, kWh, orphan count) per batch of a DuckDB join to the customer index."""
    if not files:
        return
    cur = mart.con.cursor()
    try:
        lookup = pa.table({CONS_NO: cons, "row": pa.array(to_row)})
        cur.register("_matrix_index", lookup)
        listing = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
        reader = cur.sql(
            f"""
            SELECT CASE WHEN i.row IS NULL THEN -2 ELSE i.row END AS row,
                   (r.{DATE} - DATE '1970-01-01')::INTEGER - {start_day} AS day,
                   r.{KWH}::FLOAT AS kwh
            FROM read_parquet({listing}) r
            LEFT JOIN _matrix_index i ON r.{CONS_NO} = i.{CONS_NO}
            """
        ).to_arrow_reader(BATCH_ROWS)
        for batch in reader:
            pos = batch.column(0).to_numpy(zero_copy_only=False)
            day = batch.column(1).to_numpy(zero_copy_only=False)
            kwh = batch.column(2).to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
            keep = (pos >= 0) & (day >= 0) & (day < days)
            yield pos[keep] * days + day[keep], kwh[keep], int(np.count_nonzero(pos == -2))
    finally:
        cur.close()
