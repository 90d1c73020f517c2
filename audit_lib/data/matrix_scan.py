"""Reading a bureau's readings into cells of the customers × days matrix.

Producers yield batches of (flat cell index, kWh, orphan rows): :func:`arrow_cells` scans the
Parquet files with ``cons_no`` kept as the files' dictionaries (one lookup per dictionary,
not per row); :func:`duckdb_cells` lets DuckDB join the readings to a customer index.
:func:`scatter` writes batches into the matrix; :func:`resolve_duplicates` settles cells that
several readings hit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from audit_lib.data.access import Mart
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


def arrow_cells(
    files: list[str], lookup: KeyLookup, to_row: np.ndarray, start_day: int, days: int
) -> Cells:
    """Yield (flat cell, kWh, orphan count) per record batch, mapping dictionaries not rows."""
    if not files:
        return
    fmt = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns=[CONS_NO]))
    scanner = ds.dataset(files, format=fmt).scanner(
        columns=[CONS_NO, DATE, KWH], batch_size=BATCH_ROWS, batch_readahead=4, fragment_readahead=1
    )
    cell_type = np.int32 if len(to_row) * days < 2**31 else np.int64
    cached: tuple[pa.Array, np.ndarray, np.ndarray, bool] | None = None
    for batch in scanner.to_batches():
        if batch.num_rows == 0:
            continue
        cons = batch.column(0)
        if not isinstance(cons, pa.DictionaryArray):
            cons = cons.dictionary_encode()
        if cached is None or not cached[0].equals(cons.dictionary):
            known = lookup.positions(cons.dictionary)
            dict_pos = np.where(known >= 0, to_row[known], np.where(known >= 0, -1, -2))
            # cell = row × days + (date − start): fold the row part into the dictionary
            base = (dict_pos * days - start_day).astype(cell_type)
            cached = (cons.dictionary, base, dict_pos, bool(dict_pos.min() >= 0))
        _, base, dict_pos, all_rows = cached
        date = batch.column(1)
        lo, hi = (x.as_py() for x in pc.min_max(date).values())
        day0 = start_day if lo is None else _epoch_day(lo)
        day1 = start_day if hi is None else _epoch_day(hi)
        raw_day = date.view(pa.int32()).to_numpy(zero_copy_only=False).astype(cell_type, copy=False)
        indices = cons.indices.to_numpy(zero_copy_only=False)
        kwh = batch.column(2).to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        if all_rows and day0 >= start_day and day1 < start_day + days:
            yield base[indices] + raw_day, kwh, 0  # the common case: nothing to drop
            continue
        pos = dict_pos[indices]
        day = raw_day - start_day
        keep = (pos >= 0) & (day >= 0) & (day < days)
        yield base[indices][keep] + raw_day[keep], kwh[keep], int(np.count_nonzero(pos == -2))


def _epoch_day(value: dt.date) -> int:
    return (value - dt.date(1970, 1, 1)).days


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
