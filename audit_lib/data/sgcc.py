"""Loader for the public SGCC electricity-theft data set (国家电网窃电数据集) into the mart.

The file has one row per customer: ``CONS_NO``, ``FLAG`` (1 = confirmed theft), then one
column per day headed like ``2014/1/1`` — not in date order — with about a quarter of the
values missing. :func:`load_sgcc` puts it into the mart as a bureau of its own (``SGCC``):
customers (class residential, industry unknown), one station and area, a meter each and the
daily readings (missing days are left out), and writes the labels (``cons_no, flag``) to a
separate file, so detectors can be scored against them but never read them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from audit_lib.data.integrity import record_manifest
from audit_lib.data.mart import table_dir, write_table
from audit_lib.data.schema import BUREAUS, TABLES, TARIFFS
from audit_lib.errors import DataError, SchemaError

SGCC_BUREAU = ("SGCC", "国网公开数据集", "SGCC public data set")
SGCC_TARIFF = "RES-SGCC"


@dataclass(frozen=True)
class SgccLoad:
    """What :func:`load_sgcc` loaded."""

    customers: int
    days: int
    readings: int
    missing_share: float
    duplicate_rows: int
    bad_values: int
    thieves: int
    labels: Path


class SgccData(NamedTuple):
    """The file's content: customers, labels, days in order and the values."""

    cons: pd.Series
    flag: pd.Series
    dates: pd.DatetimeIndex
    values: np.ndarray  # float32, customers × days, NaN = missing
    unreadable: np.ndarray  # per row: cells with text that is not a number (now NaN)


def read_sgcc(path: Path | str) -> SgccData:
    """Read the CSV into customers, labels, days in date order and a float32 matrix.

    Values that are not numbers become NaN and are counted per row in ``unreadable``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("SGCC file does not exist", file=str(path))
    try:
        table = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types={"CONS_NO": pa.string(), "FLAG": pa.string()},
                strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise DataError(f"cannot read SGCC CSV: {exc}", file=str(path)) from exc
    for col in ("CONS_NO", "FLAG"):
        if col not in table.column_names:
            raise SchemaError(f"SGCC file has no {col} column", file=str(path), field=col)
    day_cols = [c for c in table.column_names if c not in ("CONS_NO", "FLAG")]
    try:
        days = pd.to_datetime(pd.Series(day_cols), format="%Y/%m/%d")
    except ValueError as exc:
        raise SchemaError(
            f"SGCC day columns must be headed like 2014/1/1: {exc}", file=str(path)
        ) from exc
    order = np.argsort(days.to_numpy(), kind="stable")
    dates = pd.DatetimeIndex(days.to_numpy()[order])
    if dates.has_duplicates:
        raise SchemaError("SGCC file repeats a day column", file=str(path))
    values = np.empty((table.num_rows, len(day_cols)), dtype=np.float32)
    unreadable = np.zeros(table.num_rows, dtype=np.int64)
    for j, src in enumerate(order):
        col = table.column(day_cols[src])
        if not pa.types.is_floating(col.type) and not pa.types.is_integer(col.type):
            present = col.is_valid().to_numpy(zero_copy_only=False)
            col = pa.array(pd.to_numeric(pc.cast(col, pa.string()).to_pandas(), errors="coerce"))
            unreadable += present & col.is_null().to_numpy(zero_copy_only=False)
        values[:, j] = col.cast(pa.float32()).to_numpy(zero_copy_only=False)
    cons = table.column("CONS_NO").to_pandas().astype("string").str.strip()
    flag = pd.to_numeric(table.column("FLAG").to_pandas(), errors="coerce")
    if cons.isna().any():
        row = int(np.flatnonzero(cons.isna().to_numpy())[0])
        raise DataError("SGCC row without CONS_NO", file=str(path), field="CONS_NO", row=row)
    bad_flag = ~flag.isin([0, 1])
    if bad_flag.any():
        row = int(np.flatnonzero(bad_flag.to_numpy())[0])
        raise DataError("FLAG must be 0 or 1", file=str(path), field="FLAG", row=row)
    return SgccData(cons, flag.astype(np.int8), dates, values, unreadable)


def load_sgcc(csv: Path | str, mart: Path | str, labels: Path | str) -> SgccLoad:
    """Load an SGCC-format CSV into the mart as bureau ``SGCC`` and write its labels.

    Parameters
    ----------
    csv
        The SGCC file (``CONS_NO, FLAG, 2014/1/1, …``).
    mart
        Mart folder (created if missing). The city tables ``bureaus`` and ``tariffs`` gain
        one row each if they do not have it; other bureaus are left alone.
    labels
        Output file for ``cons_no, flag`` (``.csv`` or ``.parquet``).

    Returns
    -------
    SgccLoad
    """
    cons, flag, dates, values, unreadable = read_sgcc(csv)
    dup = cons.duplicated().to_numpy()
    cons, flag, values = cons[~dup].reset_index(drop=True), flag[~dup], values[~dup]
    bad = int(unreadable[~dup].sum())
    values[values < 0] = np.nan
    n, d = values.shape
    code = SGCC_BUREAU[0]
    first = dates[0].date()
    cons_arr = pa.array(cons.to_numpy(dtype=object), pa.string())
    _merge_city_row(mart, BUREAUS, pa.table({"bureau": [code], "name_zh": [SGCC_BUREAU[1]],
                                             "name_en": [SGCC_BUREAU[2]]}))  # fmt: skip
    _merge_city_row(mart, TARIFFS, _sgcc_tariff())
    station, area = f"{code}-S0", f"{code}-A0"
    write_table(mart, "stations", pa.table({"station_id": [station], "name_zh": ["数据集供电所"],
                                            "bureau": [code]}))  # fmt: skip
    write_table(mart, "areas", pa.table({"area_id": [area], "station_id": [station],
                                         "transformer_kva": [float("nan")],
                                         "kind": ["unknown"], "bureau": [code]}))  # fmt: skip
    write_table(mart, "customers", _customers(cons_arr, station, area, first))
    meter_ids = pc.binary_join_element_wise("M", cons_arr, "")
    write_table(mart, "meters", pa.table({"meter_id": meter_ids, "cons_no": cons_arr,
                                          "multiplier": np.ones(n), "install_date": [first] * n,
                                          "remove_date": pa.nulls(n, pa.date32()),
                                          "bureau": [code] * n}))  # fmt: skip
    readings = 0
    day_numbers = dates.to_numpy().astype("datetime64[D]")
    for _, cols in pd.Series(np.arange(d)).groupby(dates.to_period("M")):
        j = cols.to_numpy()
        block = values[:, j]
        rows, days = np.nonzero(~np.isnan(block))
        readings += rows.size
        write_table(mart, "readings", pa.table({
            "cons_no": cons_arr.take(pa.array(rows)), "date": day_numbers[j][days],
            "kwh": block[rows, days], "bureau": pa.array([code] * rows.size, pa.string()),
        }))  # fmt: skip
    out = _write_labels(labels, cons, flag)
    record_manifest(mart)  # every file with its size and hash (integrity)
    return SgccLoad(n, d, readings, float(np.isnan(values).mean()), int(dup.sum()), bad,
                    int(flag.sum()), out)  # fmt: skip


def _customers(cons: pa.Array, station: str, area: str, first: dt.date) -> pa.Table:
    n = len(cons)
    code = SGCC_BUREAU[0]

    def const(value: object, typ: pa.DataType) -> pa.Array:
        return pa.array([value] * n, typ)

    return pa.table({
        "cons_no": cons, "name": const("***", pa.string()), "phone": pa.nulls(n, pa.string()),
        "id_no": pa.nulls(n, pa.string()), "station_id": const(station, pa.string()),
        "area_id": const(area, pa.string()), "cust_class": const("residential", pa.string()),
        "industry": const("unknown", pa.string()), "tariff_code": const(SGCC_TARIFF, pa.string()),
        "voltage_kv": const(0.22, pa.float64()), "capacity_kva": const(float("nan"), pa.float64()),
        "status": const("active", pa.string()), "open_date": const(first, pa.date32()),
        "close_date": pa.nulls(n, pa.date32()), "bureau": const(code, pa.string()),
    })  # fmt: skip


def _sgcc_tariff() -> pa.Table:
    row: dict[str, list[object]] = {c.name: [None] for c in TARIFFS.columns}
    row.update(tariff_code=[SGCC_TARIFF], name_zh=["居民(数据集)"], name_en=["residential (data set)"],
               kind=["flat"], classes=["residential"], price=[0.52],
               valid_from=[dt.date(2000, 1, 1)])  # fmt: skip
    return pa.table(row, schema=TARIFFS.arrow_schema())


def _merge_city_row(mart: Path | str, table: object, row: pa.Table) -> None:
    """Add ``row`` to a city-wide table unless a row with the same key is there."""
    spec = TABLES[getattr(table, "name", str(table))]
    files = sorted(table_dir(mart, spec).glob("*.parquet"))
    if files:
        old = pa.concat_tables([pq.read_table(f) for f in files])
        old_keys = set(zip(*(old[k].to_pylist() for k in spec.key), strict=True))
        if next(zip(*(row[k].to_pylist() for k in spec.key), strict=True)) in old_keys:
            return
        from audit_lib.data.mart import conform

        row = pa.concat_tables([conform(spec, old), conform(spec, row)])
    write_table(mart, spec, row)


def _write_labels(path: Path | str, cons: pd.Series, flag: pd.Series) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({"cons_no": cons.to_numpy(), "flag": flag.to_numpy()})
    if out.suffix == ".parquet":
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)
    return out
