"""The data mart: hive-partitioned Parquet per table, read through DuckDB.

Writing replaces whole partitions atomically: new files are written to a staging folder
beside the table and each partition folder is swapped in with a rename, so a reader never
sees half a partition, and writing the same period twice leaves one copy.
"""

from __future__ import annotations

import itertools
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from audit_lib.data.integrity import update_manifest
from audit_lib.data.schema import BUREAU, MONTH, TABLES, Table
from audit_lib.errors import SchemaError

PARQUET_COMPRESSION = "zstd"
ROW_GROUP_ROWS = 1 << 20


def table_dir(mart: Path | str, table: Table | str) -> Path:
    """Folder of ``table`` inside the mart."""
    name = table if isinstance(table, str) else table.name
    return Path(mart) / name


def conform(table: Table, data: pa.Table, *, source: str = "<memory>") -> pa.Table:
    """Return ``data`` with exactly the table's columns, in order, cast to the schema types.

    A ``month`` partition column is derived from ``date_column`` when absent.

    Raises
    ------
    SchemaError
        If a column is missing or cannot be cast; the message names the table and column.
    """
    if table.partitioning == "bureau_month" and MONTH not in data.column_names:
        if table.date_column is None or table.date_column not in data.column_names:
            raise SchemaError(f"table {table.name}: no {MONTH!r} column", file=source, field=MONTH)
        month = pc.strftime(data[table.date_column], format="%Y-%m")
        data = data.append_column(MONTH, month)
    arrays = []
    for col in table.columns:
        if col.name not in data.column_names:
            raise SchemaError(
                f"table {table.name}: missing column {col.name!r}", file=source, field=col.name
            )
        arr = data[col.name]
        if arr.type != col.type:
            try:
                arr = arr.cast(col.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaError(
                    f"table {table.name}: column {col.name!r} is {arr.type}, expected {col.type}",
                    file=source,
                    field=col.name,
                ) from exc
        if not col.nullable and arr.null_count:
            row = int(pc.index(pc.is_null(arr), True).as_py())
            raise SchemaError(
                f"table {table.name}: column {col.name!r} is null where a value is required",
                file=source,
                field=col.name,
                row=row,
            )
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=table.arrow_schema())


def write_table(mart: Path | str, table: Table | str, data: pa.Table) -> list[Path]:
    """Write ``data`` into the mart, replacing every partition it touches.

    Parameters
    ----------
    mart
        Root folder of the mart.
    table
        The table (or its name in :data:`audit_lib.data.schema.TABLES`).
    data
        Rows with the table's columns (extra columns are dropped, types are cast).

    Returns
    -------
    list of Path
        The partition folders (or the table folder for city-wide tables) written.
    """
    spec = TABLES[table] if isinstance(table, str) else table
    staging = Path(mart) / f".staging-{spec.name}-{uuid.uuid4().hex[:8]}"
    try:
        stage_table(staging, spec, data)
        return publish_table(staging, mart, spec, replace_scope=False)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def stage_table(staging: Path | str, table: Table | str, data: pa.Table, *, part: int = 0) -> None:
    """Write ``data`` into a staging folder laid out like the mart (several parts may be added).

    Each partition gets one file ``part-{part}-0.parquet`` holding its rows in their input
    order, written with :func:`parquet_options` (files in parallel threads, each file by one):
    the same table always gives the same bytes.

    Parameters
    ----------
    staging
        A private folder (on the mart's file system, so publishing is a rename).
    table
        The table or its name.
    data
        Rows with the table's columns (conformed to the schema here).
    part
        Number of this chunk; chunks of the same table must use different numbers.
    """
    spec = TABLES[table] if isinstance(table, str) else table
    data = conform(spec, data)
    root = table_dir(staging, spec)
    root.mkdir(parents=True, exist_ok=True)
    if spec.partitioning == "city":
        write_parquet(data, root / f"part-{part}.parquet")
        return
    keys = spec.partition_columns

    def write(values: tuple[str, ...], rows: pa.Table) -> None:
        folder = root.joinpath(*(f"{k}={v}" for k, v in zip(keys, values, strict=True)))
        folder.mkdir(parents=True, exist_ok=True)
        write_parquet(rows.select(spec.file_columns), folder / f"part-{part}-0.parquet")

    parts = split_partitions(data, keys)
    # files are independent, so writing them in parallel keeps every file's bytes
    with ThreadPoolExecutor(max_workers=max(1, min(len(parts), os.cpu_count() or 1))) as pool:
        list(pool.map(lambda p: write(*p), parts))


def split_partitions(data: pa.Table, keys: list[str]) -> list[tuple[tuple[str, ...], pa.Table]]:
    """The rows of ``data`` per combination of the ``keys`` columns, input order kept.

    Returns
    -------
    list of (values, rows)
        Sorted by the key values; ``rows`` are slices when ``data`` is already grouped.

    Raises
    ------
    SchemaError
        If a key column is null (a partition folder needs a name).
    """
    if data.num_rows == 0:
        return []
    codes = np.zeros(data.num_rows, dtype=np.int64)
    labels: list[list[str]] = []
    for key in keys:
        column = data[key].combine_chunks()
        if column.null_count:
            raise SchemaError(f"partition column {key!r} is null", field=key)
        encoded = pc.dictionary_encode(column)
        labels.append(encoded.dictionary.to_pylist())
        codes = codes * len(labels[-1]) + encoded.indices.to_numpy().astype(np.int64)
    if np.all(codes[:-1] <= codes[1:]):  # already grouped (one partition, or in key order)
        ordered, order = codes, None
    else:
        order = np.argsort(codes, kind="stable")
        ordered = codes[order]
    firsts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    bounds = np.r_[firsts, len(ordered)]
    parts = []
    for lo, hi in itertools.pairwise(bounds):
        code, values = int(ordered[lo]), []
        for names in reversed(labels):
            code, at = divmod(code, len(names))
            values.append(names[at])
        rows = data.slice(lo, hi - lo) if order is None else data.take(pa.array(order[lo:hi]))
        parts.append((tuple(reversed(values)), rows))
    return sorted(parts, key=lambda p: p[0])


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """Parquet writer options of every mart file (cheap to decode, deterministic).

    Strings and dates are dictionary-encoded (``cons_no`` in readings becomes small integer
    codes a reader can map once per row group); measures are stored plain with byte-stream
    split (dictionary encoding random kWh values costs write and read time for nothing);
    zstd; row groups of 2^20 rows; page checksums (CRC32), which the readers verify.
    """
    return {
        "compression": PARQUET_COMPRESSION,
        "row_group_size": ROW_GROUP_ROWS,
        "use_dictionary": [
            f.name
            for f in schema
            if pa.types.is_string(f.type)
            or pa.types.is_large_string(f.type)
            or pa.types.is_date(f.type)
            or pa.types.is_dictionary(f.type)
        ],
        "use_byte_stream_split": [f.name for f in schema if pa.types.is_floating(f.type)],
        "write_page_checksum": True,  # a corrupted page fails its CRC when read (integrity)
    }


def write_parquet(data: pa.Table, path: Path | str) -> None:
    """Write one mart file with :func:`parquet_options`."""
    pq.write_table(data, path, **parquet_options(data.schema))


def partitions(root: Path | str, table: Table | str) -> list[Path]:
    """Partition folders of ``table`` under ``root`` (relative paths, sorted)."""
    spec = TABLES[table] if isinstance(table, str) else table
    base = table_dir(root, spec)
    if spec.partitioning == "city" or not base.is_dir():
        return []
    pattern = "/".join(f"{k}=*" for k in spec.partition_columns)
    return sorted(p.relative_to(base) for p in base.glob(pattern) if p.is_dir())


def publish_table(
    staging: Path | str,
    mart: Path | str,
    table: Table | str,
    *,
    replace_scope: bool = True,
    bureaus: list[str] | None = None,
    months: list[str] | None = None,
) -> list[Path]:
    """Swap a staged table into the mart, one partition folder at a time (renames).

    Parameters
    ----------
    staging, mart
        The staging folder written by :func:`stage_table` and the mart.
    table
        The table or its name.
    replace_scope
        Also remove mart partitions inside the scope (``bureaus`` × ``months``; ``None`` = all)
        that the staging folder does not have, so the mart mirrors a source that lost them.
        With ``False`` only the staged partitions are replaced.
    bureaus, months
        The scope for ``replace_scope``.

    Returns
    -------
    list of Path
        The folders written into the mart.
    """
    spec = TABLES[table] if isinstance(table, str) else table
    target = table_dir(mart, spec)
    source = table_dir(staging, spec)
    if spec.partitioning == "city":
        if source.is_dir():
            _swap(source, target)
            update_manifest(mart, [target])
            return [target]
        if replace_scope and target.exists():
            shutil.rmtree(target)
            update_manifest(mart, [target])
        return []
    staged = partitions(staging, spec)
    written = []
    for rel in staged:
        _swap(source / rel, target / rel)
        written.append(target / rel)
    removed = []
    if replace_scope:
        for rel in set(partitions(mart, spec)) - set(staged):
            values = dict(part.split("=", 1) for part in rel.parts)
            in_bureaus = bureaus is None or values.get(BUREAU) in bureaus
            in_months = months is None or MONTH not in values or values[MONTH] in months
            if in_bureaus and in_months:
                shutil.rmtree(target / rel, ignore_errors=True)
                removed.append(target / rel)
    update_manifest(mart, written + removed)  # a mart that has a manifest keeps it true
    return written


def _swap(new: Path, target: Path) -> None:
    """Replace folder ``target`` with ``new`` using renames (old copy removed afterwards)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    old = target.parent / f".old-{target.name}-{uuid.uuid4().hex[:8]}"
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def partition_path(
    mart: Path | str, table: Table | str, bureau: str, month: str | None = None
) -> Path:
    """Folder of one partition, e.g. ``readings/bureau=YZ/month=2025-01``."""
    path = table_dir(mart, table) / f"{BUREAU}={bureau}"
    return path / f"{MONTH}={month}" if month else path
