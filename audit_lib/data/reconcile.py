"""Reconciliation with the source system (与源系统核对): what the mart holds against what the
source holds now.

The source rows in scope are read again and put through the ingest's own checks
(:func:`audit_lib.data.ingest.checked_chunks`), so rows the ingest rejected are left out on
both sides and only real differences remain: rows added, removed or corrected in the source
since the last ingest (late readings, 电量退补 corrections), or mart files lost or altered.
Both sides are reduced by DuckDB to one fingerprint per table, bureau, entity (customer,
station area, …) and month: the row count and a sum of row hashes, every column hashed as
text, so that the comparison does not depend on row order or on how a file stores a type.
Each entity and month whose fingerprints differ is a hit of the data-quality check
``source_mismatch``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy.engine import Engine

from audit_lib.data.access import Mart
from audit_lib.data.checks import CodeLists
from audit_lib.data.ingest import checked_chunks, source_engine
from audit_lib.data.periods import months_between, parse_period
from audit_lib.data.quality import HIT_COLUMNS, SOURCE_CHECK
from audit_lib.data.schema import BUREAU, MONTH, TABLES
from audit_lib.data.source import LOAD_ORDER, check_source

ENTITY: dict[str, tuple[str, str]] = {
    "bureaus": (BUREAU, "bureau"),
    "tariffs": ("tariff_code", "tariff"),
    "stations": ("station_id", "station"),
    "areas": ("area_id", "area"),
    "customers": ("cons_no", "customer"),
    "meters": ("cons_no", "customer"),
    "readings": ("cons_no", "customer"),
    "area_supply": ("area_id", "area"),
    "bills": ("cons_no", "customer"),
    "payments": ("cons_no", "customer"),
    "tickets": ("ticket_id", "ticket"),
    "meter_events": ("cons_no", "customer"),
}
"""Per table: the column a difference is reported on, and its kind."""

KEYS = ["bureau", "entity", "month"]  # what a fingerprint is per (with the table)
_PRIME = 4_294_967_291  # row hashes are summed modulo-reduced: no overflow, order-free


def _fingerprint_sql(table: str, source: str, where: str = "") -> str:
    spec = TABLES[table]
    entity = ENTITY[table][0]
    cols = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in spec.names)
    bureau = BUREAU if BUREAU in spec.names else "NULL::VARCHAR"
    month = MONTH if MONTH in spec.names else "NULL::VARCHAR"
    return f"""
        SELECT {bureau} AS bureau, CAST({entity} AS VARCHAR) AS entity, {month} AS month,
               count(*) AS n, sum(hash({cols}) % {_PRIME})::BIGINT AS h
        FROM {source} {where} GROUP BY ALL"""


def _source_side(
    con: duckdb.DuckDBPyConnection, table: str, chunks: Iterable[pa.Table]
) -> pd.DataFrame:
    """Fingerprints of the accepted source rows, each chunk reduced as it arrives (the table
    is never held whole), then summed per key."""
    frames = [pd.DataFrame(columns=[*KEYS, "n", "h"])]
    for chunk in chunks:
        if chunk.num_rows:
            con.register("chunk", chunk)
            frames.append(con.sql(_fingerprint_sql(table, "chunk")).df())
            con.unregister("chunk")
    both = pd.concat(frames, ignore_index=True)
    return both.groupby(KEYS, dropna=False, as_index=False)[["n", "h"]].sum()


def _mart_side(
    mart: Mart, table: str, bureaus: list[str] | None, months: list[str] | None
) -> pd.DataFrame:
    spec = TABLES[table]
    if not mart.has_table(table):
        return pd.DataFrame(columns=[*KEYS, "n", "h"])
    conds, params = [], []
    if bureaus and BUREAU in spec.names and table != "bureaus":
        conds.append(f"{BUREAU} IN (SELECT unnest(?::VARCHAR[]))")
        params.append(bureaus)
    if months and spec.partitioning == "bureau_month":
        conds.append(f"{MONTH} IN (SELECT unnest(?::VARCHAR[]))")
        params.append(months)
    where = f"WHERE {' AND '.join(conds)}" if conds else ""
    return mart.sql(_fingerprint_sql(table, table, where), params)


def reconcile(
    source: str | Engine,
    mart: Mart,
    *,
    period: str | None = None,
    bureaus: list[str] | None = None,
    today: dt.date | None = None,
    chunk_rows: int = 200_000,
) -> pd.DataFrame:
    """Compare the mart with the source over the scope of an ingest.

    Parameters
    ----------
    source
        URL (or engine) of the SG186-shaped source database.
    mart
        The mart, open.
    period, bureaus, today, chunk_rows
        As :func:`audit_lib.data.ingest.ingest`'s: give the ingest's own, or the rows its
        checks rejected then may be accepted now (a future date is no longer future).

    Returns
    -------
    pandas.DataFrame
        Data-quality hits (the columns of :data:`audit_lib.data.quality.HIT_COLUMNS`), check
        ``source_mismatch``: one per table, entity and month that differ, the detail giving
        both row counts (``内容不同 / values differ`` when the counts agree).
    """
    engine = source_engine(source)
    check_source(engine, LOAD_ORDER)
    span = parse_period(period) if period else None
    months = months_between(*span) if span else None
    codes = CodeLists()
    hits = []
    with duckdb.connect() as con:
        for table in LOAD_ORDER:
            chunks = checked_chunks(
                engine, table, codes, today or dt.date.today(), span, bureaus, chunk_rows
            )
            src = _source_side(con, table, (accepted for _, accepted, _ in chunks))
            got = _mart_side(mart, table, bureaus, months)
            hits.append(_differences(table, src, got))
    found = [h for h in hits if len(h)]
    return pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=HIT_COLUMNS)


def _differences(table: str, src: pd.DataFrame, got: pd.DataFrame) -> pd.DataFrame:
    """The hits of one table: the keys whose fingerprints differ between the two sides."""
    src, got = (f.astype(dict.fromkeys(KEYS, "string")) for f in (src, got))
    both = src.merge(got, on=KEYS, how="outer", suffixes=("_s", "_m"))
    both = both.fillna({"n_s": 0, "n_m": 0, "h_s": -1, "h_m": -1})
    bad = both[(both["n_s"] != both["n_m"]) | (both["h_s"] != both["h_m"])]
    bad = bad.sort_values(KEYS, kind="stable")
    n_s, n_m = bad["n_s"].astype("int64").astype(str), bad["n_m"].astype("int64").astype(str)
    same = (bad["n_s"] == bad["n_m"]).to_numpy()
    values_zh = pd.Series(np.where(same, "，内容不同", ""), index=bad.index, dtype=str)
    values_en = pd.Series(np.where(same, ", values differ", ""), index=bad.index, dtype=str)
    zh = f"{table}: 源系统 " + n_s + " 行，集市 " + n_m + " 行" + values_zh
    en = f"{table}: source " + n_s + " rows, mart " + n_m + " rows" + values_en
    return pd.DataFrame(
        {
            "entity": bad["entity"].to_numpy(),
            "entity_kind": ENTITY[table][1],
            "check": SOURCE_CHECK[0],
            "date": pd.NaT,
            "end": pd.NaT,
            "month": bad["month"].astype(object).where(bad["month"].notna(), None).to_numpy(),
            "detail": (zh + " / " + en).to_numpy(),
            "bureau": bad["bureau"].astype(object).where(bad["bureau"].notna(), None).to_numpy(),
        }
    )
