"""Write generated bureaus into the mart, the truth table and the manifest.

``DIR/mart/`` (every table of the schema, partitioned as the schema says), ``DIR/truth.parquet``
(schema ``TRUTH``; never part of the mart the detectors read) and ``DIR/manifest.json``
(parameters, seed, row counts, timings).
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from audit_lib.demo.generate.bureau import BureauData
from audit_lib.demo.generate.tariffs import tariffs_table
from audit_lib.data.mart import (
    conform,
    parquet_options,
    partition_path,
    publish_table,
    write_parquet,
    write_table,
)
from audit_lib.data.schema import BUREAUS, TABLES, TRUTH
from audit_lib.demo.generate.city import all_bureaus
from audit_lib.errors import ConfigError, SchemaError

MONTHLY = ("bills", "payments", "tickets", "meter_events", "area_supply")
PER_BUREAU = ("stations", "areas", "customers", "meters")


def prepare_out(out_dir: Path) -> None:
    """Make ``out_dir`` ready: remove a previous demo data set, refuse anything else."""
    mart = out_dir / "mart"
    manifest = out_dir / "manifest.json"
    if mart.exists() and not manifest.exists():
        raise ConfigError(
            f"--out {out_dir}: has a mart/ folder that is not demo data; not touching it"
        )
    if manifest.exists():
        shutil.rmtree(mart, ignore_errors=True)
        (out_dir / "truth.parquet").unlink(missing_ok=True)
        manifest.unlink()
    mart.mkdir(parents=True, exist_ok=True)


def city_tables(n_bureaus: int) -> dict[str, pa.Table]:
    """City-wide tables: the first ``n_bureaus`` bureaus and the tariff catalogue."""
    chosen = all_bureaus()[:n_bureaus]
    bureaus = pa.table(
        {
            "bureau": [b.code for b in chosen],
            "name_zh": [b.name_zh for b in chosen],
            "name_en": [b.name_en for b in chosen],
        },
        schema=BUREAUS.arrow_schema(),
    )
    return {"bureaus": bureaus, "tariffs": tariffs_table()}


def write_city(mart: Path, n_bureaus: int) -> dict[str, int]:
    """Write the city-wide tables; return their row counts."""
    tables = city_tables(n_bureaus)
    for name, table in tables.items():
        write_table(mart, name, table)
    return {name: t.num_rows for name, t in tables.items()}


def write_bureau(mart: Path, data: BureauData) -> dict[str, int]:
    """Write every table of one bureau; return row counts.

    All partitions are staged in one private folder inside the mart and then published
    table by table (renames), so readers never see half a bureau.
    """
    counts: dict[str, int] = {}
    staging = mart / f".staging-{data.code}-{uuid.uuid4().hex[:8]}"
    try:
        for name in PER_BUREAU:
            counts[name] = stage_partition(staging, name, data.tables[name], data.code)
        for name in MONTHLY:
            counts[name] = 0
            for label, part in split_months(data.tables[name]):
                counts[name] += stage_partition(staging, name, part, data.code, label)
        counts["readings"] = 0
        for m, label in enumerate(data.cal.month_labels):
            part = data.readings_month(m, encoded=True)
            counts["readings"] += stage_encoded(staging, "readings", part, data.code, label)
        for name in (*PER_BUREAU, *MONTHLY, "readings"):
            publish_table(staging, mart, name, replace_scope=False)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return counts


def split_months(table: pa.Table) -> list[tuple[str, pa.Table]]:
    """The rows of ``table`` per value of its ``month`` column, row order kept."""
    if table.num_rows == 0:
        return []
    encoded = pc.dictionary_encode(table["month"].combine_chunks())
    codes = encoded.indices.to_numpy()
    labels = encoded.dictionary.to_pylist()
    if np.all(codes[:-1] <= codes[1:]):  # already grouped by month: slices, no copy
        sorted_codes, sorted_table = codes, table
    else:
        order = np.argsort(codes, kind="stable")
        sorted_codes, sorted_table = codes[order], table.take(pa.array(order))
    bounds = np.searchsorted(sorted_codes, np.arange(len(labels) + 1))
    parts = [
        (labels[i], sorted_table.slice(bounds[i], bounds[i + 1] - bounds[i]))
        for i in range(len(labels))
    ]
    return sorted(parts, key=lambda p: p[0])


def stage_partition(
    staging: Path, table: str, data: pa.Table, bureau: str, month: str | None = None
) -> int:
    """Write ``data`` as the one file of a partition under ``staging``; return its rows.

    The generator knows each chunk's partition, so it writes the file directly instead of
    going through the dataset writer: faster, and the same rows always give the same bytes.
    """
    spec = TABLES[table]
    data = conform(spec, data, source=f"generated {table} {bureau} {month or ''}".strip())
    folder = partition_path(staging, spec, bureau, month)
    folder.mkdir(parents=True)
    data = data.select(spec.file_columns)
    write_parquet(data, folder / "part-0.parquet")
    return data.num_rows


def stage_encoded(
    staging: Path, table: str, data: pa.Table, bureau: str, month: str | None = None
) -> int:
    """Like :func:`stage_partition` for tables whose string columns are dictionary chunks.

    Each record batch (one dictionary) becomes one row group, written without the Arrow
    schema so readers see the schema's plain ``string`` type. Types are checked here
    instead of cast (a cast would undo the encoding).
    """
    spec = TABLES[table]
    data = data.select(spec.file_columns)
    for col in spec.columns:
        if col.name not in spec.file_columns:
            continue
        typ = data.schema.field(col.name).type
        value = typ.value_type if pa.types.is_dictionary(typ) else typ
        if value != col.type:
            raise SchemaError(
                f"table {table}: column {col.name!r} is {typ}, expected {col.type}",
                file=f"generated {table} {bureau} {month or ''}".strip(),
                field=col.name,
            )
    schema = pa.schema(
        [pa.field(f.name, f.type, nullable=spec.column(f.name).nullable) for f in data.schema]
    )
    data = pa.Table.from_arrays(data.columns, schema=schema)
    folder = partition_path(staging, spec, bureau, month)
    folder.mkdir(parents=True)
    options = parquet_options(data.schema)
    del options["row_group_size"]  # the batches are the row groups
    with pq.ParquetWriter(
        folder / "part-0.parquet", data.schema, store_schema=False, **options
    ) as out:
        for batch in data.to_batches():  # one dictionary chunk each
            out.write_batch(batch)
    return data.num_rows


def write_truth(out_dir: Path, parts: list[pa.Table]) -> pa.Table:
    """Concatenate the bureaus' truth rows and write ``truth.parquet``."""
    truth = conform(TRUTH, pa.concat_tables(parts)) if parts else TRUTH.arrow_schema().empty_table()
    pq.write_table(truth, out_dir / "truth.parquet", compression="zstd")
    return truth


def write_manifest(out_dir: Path, manifest: dict[str, object]) -> None:
    """Write ``manifest.json`` (sorted keys, UTF-8)."""
    text = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True)
    (out_dir / "manifest.json").write_text(text + "\n", encoding="utf-8")


def empty_counts() -> dict[str, int]:
    """Row count 0 for every table of the schema."""
    return dict.fromkeys(TABLES, 0)
