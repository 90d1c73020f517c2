"""An SG186-shaped source system: the marketing database the mart is loaded from.

The tables and columns imitate SG186 (国网营销业务应用系统) names — ``c_cons`` customers,
``c_meter`` meters, ``e_mp_day_read`` daily readings, ``a_rcvbl_flow`` receivables (bills) …
— with upper-case column names. :data:`SOURCE_TABLES` maps every mart table to its source
table and every mart column to its source column, in this one place. Billing months are
stored SG186-style as ``YYYYMM`` strings (``RCVBL_YM``); the mart uses ``YYYY-MM``.

:func:`write_source` writes frames that use the mart's column names into the source shape
(SQLAlchemy Core, executemany in chunks); :func:`read_chunks` streams a source table back
with the mart's column names and the raw values (no type conversion), for
:mod:`audit_lib.data.ingest` to check.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from audit_lib.data.schema import BUREAU, MONTH, TABLES
from audit_lib.db import create_engine
from audit_lib.errors import SchemaError

INSERT_CHUNK = 50_000


@dataclass(frozen=True)
class SourceTable:
    """How one mart table is stored in the source system.

    Attributes
    ----------
    mart
        Mart table name.
    name
        Source table name (SG186 style).
    columns
        Mart column → source column. A mart ``month`` column is stored as ``YYYYMM``.
    month_from
        Mart column whose value decides the month partition when the source has no month.
    """

    mart: str
    name: str
    columns: dict[str, str]
    month_from: str | None = None

    def source_column(self, mart_column: str) -> str:
        """The source column holding ``mart_column``."""
        return self.columns[mart_column]


def _st(mart_: str, name_: str, month_from_: str | None = None, **cols: str) -> SourceTable:
    return SourceTable(mart_, name_, dict(cols), month_from_)


SOURCE_TABLES: dict[str, SourceTable] = {
    t.mart: t
    for t in (
        _st("bureaus", "o_org", bureau="ORG_NO", name_zh="ORG_NAME", name_en="ORG_NAME_EN"),
        _st("stations", "o_station", station_id="STATION_NO", name_zh="STATION_NAME",
            bureau="ORG_NO"),
        _st("areas", "g_tg", area_id="TG_NO", station_id="STATION_NO", transformer_kva="TG_CAP",
            kind="PUB_PRIV_FLAG", bureau="ORG_NO"),
        _st("customers", "c_cons", cons_no="CONS_NO", name="CONS_NAME", phone="MOBILE",
            id_no="CERT_NO", station_id="STATION_NO", area_id="TG_NO", cust_class="ELEC_TYPE_CODE",
            industry="TRADE_CODE", tariff_code="PRC_CODE", voltage_kv="VOLT_KV",
            capacity_kva="CONTRACT_CAP", status="STATUS_CODE", open_date="BUILD_DATE",
            close_date="CANCEL_DATE", bureau="ORG_NO"),
        _st("meters", "c_meter", meter_id="METER_ID", cons_no="CONS_NO", multiplier="T_FACTOR",
            install_date="INST_DATE", remove_date="RMV_DATE", bureau="ORG_NO"),
        _st("readings", "e_mp_day_read", "date", cons_no="CONS_NO", date="DATA_DATE",
            kwh="PAP_E", bureau="ORG_NO"),
        _st("area_supply", "e_tg_day_supply", "date", area_id="TG_NO", date="DATA_DATE",
            supply_kwh="PPQ", bureau="ORG_NO"),
        _st("bills", "a_rcvbl_flow", cons_no="CONS_NO", start_reg="START_READ",
            end_reg="END_READ", multiplier="T_FACTOR", kwh="T_SETTLE_PQ",
            max_demand_kw="MAX_DEMAND", tariff_code="PRC_CODE", energy_charge="KWH_AMT",
            capacity_charge="BASIC_AMT", amount="RCVBL_AMT", bureau="ORG_NO", month="RCVBL_YM"),
        _st("payments", "a_pay_flow", payment_id="PAY_ID", cons_no="CONS_NO", amount="RCV_AMT",
            paid_date="CHARGE_DATE", due_date="DUE_DATE", bureau="ORG_NO", month="RCVBL_YM"),
        _st("tariffs", "r_tariff", tariff_code="PRC_CODE", name_zh="PRC_NAME",
            name_en="PRC_NAME_EN", kind="PRC_KIND", classes="ELEC_TYPES", price="KWH_PRC",
            tier2_kwh="TIER2_PQ", tier2_price="TIER2_PRC", tier3_kwh="TIER3_PQ",
            tier3_price="TIER3_PRC", capacity_price="BASIC_PRC", valid_from="EFFECT_DATE",
            valid_to="EXPIRE_DATE"),
        _st("tickets", "s_95598_wkst", "opened", ticket_id="WKST_NO", cons_no="CONS_NO",
            area_id="TG_NO", kind="BUSI_TYPE", opened="ACCEPT_TIME", closed="FINISH_TIME",
            topic="TOPIC", bureau="ORG_NO"),
        _st("meter_events", "e_event", "time", event_id="EVENT_ID", cons_no="CONS_NO",
            meter_id="METER_ID", time="EVENT_TIME", code="ERC_CODE", bureau="ORG_NO"),
    )
}  # fmt: skip

# load order: code lists before the rows that use them
LOAD_ORDER: tuple[str, ...] = (
    "bureaus",
    "tariffs",
    *(name for name in SOURCE_TABLES if name not in ("bureaus", "tariffs")),
)


def _sql_type(typ: pa.DataType) -> sa.types.TypeEngine[Any]:
    if pa.types.is_string(typ):
        return sa.String(200)
    if pa.types.is_floating(typ):
        return sa.Float()
    if pa.types.is_integer(typ):
        return sa.Integer()
    if pa.types.is_date(typ):
        return sa.Date()
    if pa.types.is_timestamp(typ):
        return sa.DateTime()
    raise TypeError(f"no SQL type for {typ}")  # pragma: no cover - schema uses the above


def source_metadata() -> sa.MetaData:
    """SQLAlchemy Core tables of the source system (one per mart table)."""
    meta = sa.MetaData()
    for spec in SOURCE_TABLES.values():
        mart = TABLES[spec.mart]
        cols = []
        for col in mart.columns:
            if col.name == MONTH and MONTH not in spec.columns:
                continue  # derived from month_from on the way in
            typ = sa.String(6) if col.name == MONTH else _sql_type(col.type)
            cols.append(sa.Column(spec.columns[col.name], typ, nullable=True))
        index_cols = [spec.columns[k] for k in (BUREAU,) if k in spec.columns]
        table = sa.Table(spec.name, meta, *cols)
        if index_cols:
            sa.Index(f"ix_{spec.name}_{index_cols[0].lower()}", *[table.c[c] for c in index_cols])
    return meta


SOURCE_METADATA = source_metadata()


def source_table(mart_table: str) -> sa.Table:
    """The Core table of ``mart_table`` in the source system."""
    return SOURCE_METADATA.tables[SOURCE_TABLES[mart_table].name]


def write_source(
    url: str | Engine, tables: dict[str, pa.Table], *, chunk_rows: int = INSERT_CHUNK
) -> dict[str, int]:
    """Write frames with the mart's column names into the SG186-shaped source.

    Missing source tables are created; rows are appended (Core ``executemany`` in chunks).

    Parameters
    ----------
    url
        Database URL or engine (SQLite file, PostgreSQL …).
    tables
        Mart table name → Arrow table with that table's mart columns (``month`` optional
        where the source derives it).
    chunk_rows
        Rows per executemany batch.

    Returns
    -------
    dict
        Rows written per mart table.
    """
    engine = url if isinstance(url, Engine) else create_engine(url)
    unknown = sorted(set(tables) - set(SOURCE_TABLES))
    if unknown:
        raise SchemaError(f"no source table for mart table(s) {', '.join(unknown)}")
    SOURCE_METADATA.create_all(engine)
    written: dict[str, int] = {}
    with engine.begin() as conn:
        for name in LOAD_ORDER:
            if name in tables:
                written[name] = _insert(conn, name, tables[name], chunk_rows)
    return written


def _insert(conn: sa.Connection, name: str, data: pa.Table, chunk_rows: int) -> int:
    spec = SOURCE_TABLES[name]
    mart = TABLES[name]
    present = [m for m in spec.columns if m in data.column_names]
    missing = [m for m in spec.columns if m not in data.column_names and m != MONTH]
    if missing:
        raise SchemaError(f"table {name}: missing column {missing[0]!r}", field=missing[0])
    sqlite = conn.dialect.name == "sqlite"
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {quote(spec.name)} ({', '.join(quote(spec.columns[m]) for m in present)}) "
        f"VALUES ({', '.join([mark] * len(present))})"
    )
    fast = conn.dialect.name in ("sqlite", "postgresql")
    for offset in range(0, data.num_rows, chunk_rows):
        part = data.slice(offset, chunk_rows)
        columns = [_source_values(part[m], mart.column(m).type, m, sqlite) for m in present]
        if not part.num_rows:
            continue
        if fast:  # DBAPI executemany with tuples: no per-value processing in Python
            conn.exec_driver_sql(sql, list(zip(*columns, strict=True)))
        else:
            keys = [spec.columns[m] for m in present]
            rows = [dict(zip(keys, vals, strict=True)) for vals in zip(*columns, strict=True)]
            conn.execute(sa.insert(source_table(name)), rows)
    return data.num_rows


def _source_values(arr: pa.ChunkedArray, typ: pa.DataType, name: str, sqlite: bool) -> list[Any]:
    """Python values of one column as the source stores them.

    Months become ``YYYYMM``; on SQLite, dates and times become the text SQLAlchemy writes
    there (``YYYY-MM-DD`` and ``YYYY-MM-DD HH:MM:SS.ffffff``).
    """
    if name == MONTH:
        return pc.replace_substring(arr.cast(pa.string()), "-", "").to_pylist()
    if pa.types.is_timestamp(typ):
        arr = pc.cast(arr, pa.timestamp("us"), safe=False)
        if sqlite:
            return pc.strftime(arr, format="%Y-%m-%d %H:%M:%S").to_pylist()
        return arr.to_pylist()
    if pa.types.is_date(typ):
        if not pa.types.is_date(arr.type):
            arr = pc.cast(pc.cast(arr, pa.timestamp("us"), safe=False), pa.date32())
        return arr.cast(pa.string()).to_pylist() if sqlite else arr.to_pylist()
    return arr.cast(typ).to_pylist()


def check_source(engine: Engine, tables: Sequence[str]) -> None:
    """Stop with :class:`SchemaError` if a source table or column the mart needs is absent.

    Names are compared case-insensitively (Oracle-style upper case or lower case both do).
    """
    inspector = sa.inspect(engine)
    present = {t.lower(): t for t in inspector.get_table_names()}
    for name in tables:
        spec = SOURCE_TABLES[name]
        if spec.name.lower() not in present:
            raise SchemaError(
                f"source table {spec.name} ({name}) is missing", file=_safe_url(engine)
            )
    for name in tables:
        spec = SOURCE_TABLES[name]
        cols = {c["name"].lower() for c in inspector.get_columns(present[spec.name.lower()])}
        for mart_col, src_col in spec.columns.items():
            if src_col.lower() not in cols:
                raise SchemaError(
                    f"source table {spec.name}: missing column {src_col} ({name}.{mart_col})",
                    file=_safe_url(engine),
                    field=src_col,
                )


def _safe_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def read_chunks(
    engine: Engine,
    mart_table: str,
    *,
    where: sa.ColumnElement[bool] | None = None,
    chunk_rows: int = 200_000,
) -> Iterator[pd.DataFrame]:
    """Stream a source table as DataFrames with mart column names and raw (unconverted) values.

    Values come back exactly as the driver delivers them (SQLite: dates as text), so a bad
    value reaches the ingest checks instead of failing inside the driver.
    """
    spec = SOURCE_TABLES[mart_table]
    table = source_table(mart_table)
    cols = [sa.type_coerce(table.c[src], sa.types.NullType()).label(m)
            for m, src in spec.columns.items()]  # fmt: skip
    query = sa.select(*cols)
    if where is not None:
        query = query.where(where)
    names = list(spec.columns)
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(query)
        for rows in result.partitions(chunk_rows):
            if not rows:
                continue
            columns = list(zip(*rows, strict=True))  # one tuple per column, no Row lookups
            frame = pd.DataFrame(
                {n: pd.Series(c, dtype=object) for n, c in zip(names, columns, strict=True)}
            )
            if MONTH in frame.columns:
                frame[MONTH] = _month_from_source(frame[MONTH])
            yield frame


def _month_from_source(values: pd.Series) -> pd.Series:
    """``YYYYMM`` → ``YYYY-MM`` (other shapes kept as they are, for the checks to reject)."""
    text = values.astype("string")
    ok = text.str.fullmatch(r"\d{6}").fillna(False).astype(bool)
    return text.where(~ok, text.str[:4] + "-" + text.str[4:])
