"""The data mart: hive-partitioned Parquet per table, read through DuckDB.

Writing replaces whole partitions atomically: new files are written to a staging folder
beside the table and each partition folder is swapped in with a rename, so a reader never
sees half a partition, and writing the same period twice leaves one copy.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from audit_lib.data.schema import BUREAU, MONTH, TABLES, Table
from audit_lib.errors import SchemaError

PARQUET_COMPRESSION = "zstd"


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
    data = conform(spec, data)
    root = table_dir(mart, spec)
    root.mkdir(parents=True, exist_ok=True)
    staging = root.parent / f".staging-{spec.name}-{uuid.uuid4().hex[:8]}"
    try:
        if spec.partitioning == "city":
            staging.mkdir(parents=True)
            pq.write_table(data, staging / "part-0.parquet", compression=PARQUET_COMPRESSION)
            _swap(staging, root, keep=["_rejects"])
            return [root]
        keys = spec.partition_columns
        ds.write_dataset(
            data,
            staging,
            format="parquet",
            partitioning=ds.partitioning(
                pa.schema([(k, pa.string()) for k in keys]), flavor="hive"
            ),
            file_options=ds.ParquetFileFormat().make_write_options(compression=PARQUET_COMPRESSION),
            basename_template="part-{i}.parquet",
            existing_data_behavior="overwrite_or_ignore",
            max_rows_per_group=1 << 20,
        )
        written = []
        for part in sorted(staging.glob("/".join(["*"] * len(keys)))):
            rel = part.relative_to(staging)
            _swap(part, root / rel)
            written.append(root / rel)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap(new: Path, target: Path, keep: list[str] | None = None) -> None:
    """Replace folder ``target`` with ``new`` using renames (old copy removed afterwards)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    old = target.parent / f".old-{target.name}-{uuid.uuid4().hex[:8]}"
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    if old.exists():
        for name in keep or []:
            if (old / name).exists() and not (target / name).exists():
                os.replace(old / name, target / name)
        shutil.rmtree(old, ignore_errors=True)


def partition_path(
    mart: Path | str, table: Table | str, bureau: str, month: str | None = None
) -> Path:
    """Folder of one partition, e.g. ``readings/bureau=YZ/month=2025-01``."""
    path = table_dir(mart, table) / f"{BUREAU}={bureau}"
    return path / f"{MONTH}={month}" if month else path
