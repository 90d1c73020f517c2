"""One small query API over the mart: :class:`Mart`.

Every table of :mod:`audit_lib.data.schema` is a DuckDB view over its hive-partitioned
Parquet files. The typed methods (``customers``, ``readings``, ``bills`` …) read only the
partition folders their filters name (bureau, month), so a query for one bureau and one
quarter never opens another bureau's files; ``sql`` runs any query over the views.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from audit_lib.data.integrity import check_mart
from audit_lib.data.mart import table_dir
from audit_lib.data.periods import DateLike, months_between, to_date
from audit_lib.data.schema import BUREAU, BUREAUS, DATE, MONTH, TABLES, Table
from audit_lib.errors import DataError

DEFAULT_MEMORY = "4GB"


_NULLABLE: dict[pa.DataType, Any] = {
    pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(), pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype(), pa.bool_(): pd.BooleanDtype(),
}  # fmt: skip
"""What ``.df()`` makes of an integer or boolean column with nulls."""


def _plain(typ: pa.DataType) -> bool:
    """A type :func:`arrow_frame` converts itself (the others go through DuckDB)."""
    return bool(
        pa.types.is_string(typ) or pa.types.is_integer(typ) or pa.types.is_floating(typ)
        or pa.types.is_boolean(typ) or pa.types.is_date32(typ) or pa.types.is_decimal(typ)
        or pa.types.is_timestamp(typ)
    )  # fmt: skip


def arrow_frame(table: pa.Table) -> pd.DataFrame:
    """A query's Arrow result as the DataFrame DuckDB's ``.df()`` gives, several times faster.

    ``.df()`` makes a Python object of every string before pandas packs them again (3 s for
    10⁶ customers); Arrow hands the strings over as they are. The dtypes stay ``.df()``'s:
    dates as ``datetime64[us]``, decimals as float64, integers and booleans with nulls as
    pandas' nullable types; only an empty string column differs (``str``, not ``object``).
    A result with another type (lists, intervals …) goes through DuckDB's own conversion.
    """
    if not all(_plain(t) for t in table.schema.types):
        return duckdb.from_arrow(table).df()
    series = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        typ = column.type
        if pa.types.is_date32(typ):
            column = column.cast(pa.timestamp("us"))
        elif pa.types.is_decimal(typ):
            column = column.cast(pa.float64())
        nullable = _NULLABLE.get(column.type) if column.null_count else None
        series[name] = column.to_pandas(types_mapper=None if nullable is None else _NULLABLE.get)
    return pd.DataFrame(series, columns=table.column_names) if series else table.to_pandas()


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class Mart:
    """Read access to a mart folder through one DuckDB connection.

    Parameters
    ----------
    root
        The mart folder (``<root>/<table>/bureau=…/month=…/part-*.parquet``).
    threads
        DuckDB worker threads (default: DuckDB's choice).
    memory_limit
        DuckDB memory cap, e.g. ``"4GB"`` (default: ``AUDIT_DUCKDB_MEMORY`` or 4GB); bigger
        queries spill to a private temporary folder.

    Examples
    --------
    >>> mart = Mart("demo/mart")                                   # doctest: +SKIP
    >>> mart.readings("YZ", "2025-01-01", "2025-03-31").head()     # doctest: +SKIP
    """

    def __init__(
        self, root: Path | str, *, threads: int | None = None, memory_limit: str | None = None
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError("mart folder does not exist", file=str(self.root))
        check_mart(self.root)  # a file lost, cut short or added is named before any is read
        # a private spill folder and a memory cap: big joins spill instead of taking the machine
        self._spill = tempfile.mkdtemp(prefix="audit-duckdb-")
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._spill, True)
        config: dict[str, Any] = {
            "memory_limit": memory_limit or os.environ.get("AUDIT_DUCKDB_MEMORY", DEFAULT_MEMORY),
            "temp_directory": self._spill,
        }
        if threads:
            config["threads"] = threads
        self.con = duckdb.connect(config=config)
        self.refresh()

    # ------------------------------------------------------------------ plumbing
    def refresh(self) -> None:
        """(Re)create one view per table present in the mart (call after writing).

        Views read a glob of the table's files, so creating them opens at most one file;
        DuckDB prunes partitions from filters on ``bureau`` and ``month``.
        """
        for name, spec in TABLES.items():
            if self.files(spec):
                depth = {"city": 0, "bureau": 1, "bureau_month": 2}[spec.partitioning]
                pattern = str(table_dir(self.root, spec)) + "/*" * depth + "/*.parquet"
                self.con.execute(f"CREATE OR REPLACE VIEW {name} AS {self._scan(spec, [pattern])}")
            else:
                self.con.execute(f"DROP VIEW IF EXISTS {name}")

    def close(self) -> None:
        """Close the DuckDB connection and remove its spill folder."""
        self.con.close()
        self._cleanup()

    def __enter__(self) -> Mart:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def has_table(self, table: str) -> bool:
        """Whether the mart holds any file of ``table``."""
        return bool(self.files(TABLES[table]))

    def files(
        self,
        table: Table | str,
        bureaus: Iterable[str] | None = None,
        months: Iterable[str] | None = None,
    ) -> list[str]:
        """Parquet files of ``table``, limited to the named partitions (sorted paths)."""
        spec = TABLES[table] if isinstance(table, str) else table
        root = table_dir(self.root, spec)
        if not root.is_dir():
            return []
        if spec.partitioning == "city":
            return sorted(str(p) for p in root.glob("*.parquet"))
        b_dirs = (
            [root / f"{BUREAU}={b}" for b in bureaus]
            if bureaus is not None
            else sorted(root.glob(f"{BUREAU}=*"))
        )
        if spec.partitioning == "bureau":
            return sorted(str(p) for d in b_dirs for p in d.glob("*.parquet"))
        m_dirs = (
            [d / f"{MONTH}={m}" for d in b_dirs for m in months]
            if months is not None
            else [m for d in b_dirs for m in sorted(d.glob(f"{MONTH}=*"))]
        )
        return sorted(str(p) for d in m_dirs for p in d.glob("*.parquet"))

    def scan_sql(self, table: Table | str, files: Sequence[str]) -> str:
        """A ``SELECT`` over some of a table's files (from :meth:`files`), schema columns."""
        return self._scan(TABLES[table] if isinstance(table, str) else table, files)

    def _scan(self, spec: Table, files: Sequence[str]) -> str:
        """A ``SELECT`` over ``files`` returning the table's columns in schema order."""
        listing = "[" + ", ".join(_quote(f) for f in files) + "]"
        if spec.partitioning == "city":
            source = f"read_parquet({listing})"
        else:
            types = ", ".join(f"{k}: 'VARCHAR'" for k in spec.partition_columns)
            source = f"read_parquet({listing}, hive_partitioning = true, hive_types = {{{types}}})"
        cols = ", ".join(f'"{c}"' for c in spec.names)
        return f"SELECT {cols} FROM {source}"

    def _empty(self, spec: Table) -> pd.DataFrame:
        return spec.arrow_schema().empty_table().to_pandas()

    def _query(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        cur = self.con.cursor()
        try:
            return arrow_frame(cur.sql(sql, params=params or None).to_arrow_table())
        finally:
            cur.close()

    def select(
        self,
        table: str,
        *,
        bureaus: Iterable[str] | None = None,
        months: Iterable[str] | None = None,
        where: str = "",
        params: Sequence[Any] | None = None,
        order_by: str = "",
    ) -> pd.DataFrame:
        """Rows of ``table`` from the named partitions, filtered by an optional SQL ``where``."""
        spec = TABLES[table]
        files = self.files(spec, bureaus, months if spec.partitioning == "bureau_month" else None)
        if not files:
            return self._empty(spec)
        sql = f"SELECT * FROM ({self._scan(spec, files)}) t"
        if where:
            sql += f" WHERE {where}"
        if order_by:
            sql += f" ORDER BY {order_by}"
        return self._query(sql, params)

    # ------------------------------------------------------------------ tables
    def sql(self, query: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        """Run any SQL over the table views and return a DataFrame."""
        try:
            return self._query(query, params)
        except duckdb.CatalogException as exc:
            raise DataError(f"query names a table the mart does not hold: {exc}") from exc

    def bureaus(self) -> pd.DataFrame:
        """The bureaus table (code, 中文 and English names)."""
        return self.select(BUREAUS.name, order_by=BUREAU)

    def tables(self) -> set[str]:
        """Names of the tables the mart holds (those with at least one file)."""
        return {name for name, spec in TABLES.items() if self.files(spec)}

    def bureau_codes(self) -> list[str]:
        """Bureau codes that have customers in the mart (from the partition folders)."""
        root = table_dir(self.root, "customers")
        return sorted(p.name.split("=", 1)[1] for p in root.glob(f"{BUREAU}=*"))

    def customers(self, bureau: str | None = None) -> pd.DataFrame:
        """Customers of one bureau (all bureaus when ``None``), in stored order."""
        return self.select("customers", bureaus=_one(bureau))

    def meters(self, bureau: str | None = None) -> pd.DataFrame:
        """Meters (with their multiplier 倍率) of one bureau or all."""
        return self.select("meters", bureaus=_one(bureau))

    def areas(self, bureau: str | None = None) -> pd.DataFrame:
        """Station areas (台区) of one bureau or all."""
        return self.select("areas", bureaus=_one(bureau))

    def stations(self, bureau: str | None = None) -> pd.DataFrame:
        """Supply stations (供电所) of one bureau or all."""
        return self.select("stations", bureaus=_one(bureau))

    def tariffs(self) -> pd.DataFrame:
        """The tariff table (电价), city-wide."""
        return self.select("tariffs", order_by="tariff_code, valid_from")

    def readings(self, bureau: str | None, start: DateLike, end: DateLike) -> pd.DataFrame:
        """Daily AMI readings of one bureau (or all) between ``start`` and ``end`` inclusive."""
        return self._daily("readings", bureau, start, end)

    def area_supply(self, bureau: str | None, start: DateLike, end: DateLike) -> pd.DataFrame:
        """Daily station-area supply (台区供电量) between ``start`` and ``end`` inclusive."""
        return self._daily("area_supply", bureau, start, end)

    def _daily(
        self, table: str, bureau: str | None, start: DateLike, end: DateLike
    ) -> pd.DataFrame:
        s, e = to_date(start, name="start"), to_date(end, name="end")
        return self.select(
            table,
            bureaus=_one(bureau),
            months=months_between(s, e),
            where=f"{DATE} BETWEEN ? AND ?",
            params=[s, e],
        )

    def bills(self, bureau: str | None = None, months: Iterable[str] | None = None) -> pd.DataFrame:
        """Monthly bills of one bureau (or all) for the given ``YYYY-MM`` months (or all)."""
        return self.select("bills", bureaus=_one(bureau), months=_list(months))

    def payments(
        self, bureau: str | None = None, months: Iterable[str] | None = None
    ) -> pd.DataFrame:
        """Payments settling the given billing months."""
        return self.select("payments", bureaus=_one(bureau), months=_list(months))

    def tickets(
        self, bureau: str | None = None, months: Iterable[str] | None = None
    ) -> pd.DataFrame:
        """95598 tickets opened in the given months."""
        return self.select("tickets", bureaus=_one(bureau), months=_list(months))

    def meter_events(
        self, bureau: str | None = None, months: Iterable[str] | None = None
    ) -> pd.DataFrame:
        """Collection-terminal alarms (ERC codes) raised in the given months."""
        return self.select("meter_events", bureaus=_one(bureau), months=_list(months))


def _one(bureau: str | None) -> list[str] | None:
    return None if bureau is None else [bureau]


def _list(months: Iterable[str] | None) -> list[str] | None:
    return None if months is None else list(months)
