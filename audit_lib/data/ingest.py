"""Ingest: SG186-shaped source → mart, in chunks, schema-checked on the way in.

Every row read ends up either in the mart or in the rejects table
``<mart>/_rejects/<table>/ingest=<scope>/part-*.parquet`` (original values as strings, the
reason, the source table and key) — never silently dropped; the report counts both per table
and reason. The source is checked for every table and column before anything is written;
all tables are staged in a private folder and only swapped into the mart when every table
was read, so a failed ingest leaves the mart as it was. Re-ingesting the same period
replaces its partitions (no duplicates).
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from audit_lib.data.checks import CodeLists, KeyTracker, check_chunk, reason_label
from audit_lib.data.integrity import record_manifest
from audit_lib.data.mart import publish_table, stage_table
from audit_lib.data.periods import months_between, parse_period
from audit_lib.data.schema import BUREAU, MONTH, TABLES
from audit_lib.data.source import LOAD_ORDER, SOURCE_TABLES, check_source, read_chunks, source_table
from audit_lib.db import create_engine
from audit_lib.errors import DataError

REJECTS = "_rejects"


@dataclass
class TableReport:
    """Counts of one table: rows read, accepted, rejected (by reason), partitions written."""

    table: str
    read: int = 0
    accepted: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    partitions: int = 0


@dataclass
class IngestReport:
    """What an ingest did, per table."""

    source: str
    mart: str
    scope: str
    tables: dict[str, TableReport] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def read(self) -> int:
        """Rows read over all tables."""
        return sum(t.read for t in self.tables.values())

    @property
    def rejected(self) -> int:
        """Rows rejected over all tables."""
        return sum(t.rejected for t in self.tables.values())

    def frame(self) -> pd.DataFrame:
        """One row per table: read, accepted, rejected, partitions."""
        return pd.DataFrame(
            [(t.table, t.read, t.accepted, t.rejected, t.partitions) for t in self.tables.values()],
            columns=["table", "read", "accepted", "rejected", "partitions"],
        )

    def rejects_frame(self) -> pd.DataFrame:
        """One row per table and reason with the number of rejected rows."""
        rows = [
            (t.table, r, reason_label(r, "zh"), reason_label(r, "en"), n)
            for t in self.tables.values()
            for r, n in sorted(t.reasons.items())
        ]
        return pd.DataFrame(rows, columns=["table", "reason", "reason_zh", "reason_en", "rows"])

    def __str__(self) -> str:
        lines = [
            f"入库报告 / ingest report: {self.source} → {self.mart} [{self.scope}] "
            f"{self.seconds:.1f} s",
            self.frame().to_string(index=False),
        ]
        rejects = self.rejects_frame()
        if len(rejects):
            lines += ["拒收原因 / rejected rows by reason:", rejects.to_string(index=False)]
        return "\n".join(lines)


def ingest(
    source_url: str | Engine,
    mart: Path | str,
    period: str | None = None,
    bureaus: list[str] | None = None,
    chunk_rows: int = 200_000,
    *,
    today: dt.date | None = None,
) -> IngestReport:
    """Load the source into the mart.

    Parameters
    ----------
    source_url
        URL (or engine) of the SG186-shaped source database.
    mart
        Mart folder (created if missing).
    period
        Limit the monthly tables to this period (``2025-01..2025-03``); default: all.
    bureaus
        Limit the per-bureau tables to these bureau codes; default: all.
    chunk_rows
        Rows read and checked at a time.
    today
        Latest acceptable date of a reading or event (default: today).

    Returns
    -------
    IngestReport

    Raises
    ------
    SchemaError
        A source table or column is missing (nothing is written).
    """
    t0 = time.perf_counter()
    engine = source_engine(source_url)
    check_source(engine, LOAD_ORDER)
    today = today or dt.date.today()
    span = parse_period(period) if period else None
    months = months_between(*span) if span else None
    scope = f"{period or 'all'}_{'-'.join(sorted(bureaus)) if bureaus else 'all'}"
    root = Path(mart)
    root.mkdir(parents=True, exist_ok=True)
    report = IngestReport(engine.url.render_as_string(hide_password=True), str(root), scope)
    staging = root / f".ingest-{uuid.uuid4().hex[:8]}"
    codes = CodeLists()
    try:
        for name in LOAD_ORDER:
            chunks = checked_chunks(engine, name, codes, today, span, bureaus, chunk_rows)
            report.tables[name] = _stage(name, chunks, staging, scope)
            if bureaus and name == "bureaus":
                unknown = sorted(set(bureaus) - codes.bureaus)
                if unknown:
                    raise DataError(f"bureau {unknown[0]!r} is not in the source", field=BUREAU)
        for name, rep in report.tables.items():
            spec = TABLES[name]
            scope_months = months if spec.partitioning == "bureau_month" else None
            rep.partitions = len(
                publish_table(staging, root, spec, bureaus=bureaus, months=scope_months)
            )
            _publish_rejects(staging, root, name, scope)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    record_manifest(root)  # every file with its size and hash: detection checks them
    report.seconds = time.perf_counter() - t0
    return report


def source_engine(source: str | Engine) -> Engine:
    """An engine of the source database (a SQLite file must exist: no empty file is made)."""
    if isinstance(source, Engine):
        return source
    url = make_url(source)
    is_file = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    if is_file and not Path(str(url.database)).is_file():
        raise DataError("source database file does not exist", file=url.database)
    return create_engine(source)


def _where(
    name: str, span: tuple[dt.date, dt.date] | None, bureaus: list[str] | None
) -> sa.ColumnElement[bool] | None:
    """The SQL filter of a source table for the period and bureaus."""
    spec = SOURCE_TABLES[name]
    table = source_table(name)
    conds: list[sa.ColumnElement[bool]] = []
    if bureaus and BUREAU in spec.columns and name != "bureaus":
        conds.append(table.c[spec.columns[BUREAU]].in_(bureaus))
    if span and TABLES[name].partitioning == "bureau_month":
        if MONTH in spec.columns:
            col = table.c[spec.columns[MONTH]]
            conds.append(col.between(span[0].strftime("%Y%m"), span[1].strftime("%Y%m")))
        elif spec.month_from:
            col = table.c[spec.columns[spec.month_from]]
            upper = span[1] + dt.timedelta(days=1)
            if isinstance(col.type, sa.DateTime):
                conds += [col >= dt.datetime.combine(span[0], dt.time()),
                          col < dt.datetime.combine(upper, dt.time())]  # fmt: skip
            else:
                conds += [col >= span[0], col < upper]
    return sa.and_(*conds) if conds else None


def checked_chunks(
    engine: Engine,
    name: str,
    codes: CodeLists,
    today: dt.date,
    span: tuple[dt.date, dt.date] | None,
    bureaus: list[str] | None,
    chunk_rows: int,
) -> Iterator[tuple[pd.DataFrame, pa.Table, pd.DataFrame]]:
    """The source rows of table ``name`` in scope, chunk by chunk, through the ingest checks:
    ``(raw, accepted, rejects)``. Bureaus and tariffs accepted are added to ``codes``, which
    the later tables are checked against (tables go in :data:`LOAD_ORDER`)."""
    keys = KeyTracker()
    month_from = SOURCE_TABLES[name].month_from
    for raw in read_chunks(engine, name, where=_where(name, span, bureaus), chunk_rows=chunk_rows):
        accepted, rejects = check_chunk(
            name, raw, codes=codes, keys=keys, today=today, month_from=month_from
        )
        if name == "bureaus":
            codes.bureaus.update(accepted[BUREAU].to_pylist())
        if name == "tariffs":
            codes.tariffs.update(accepted["tariff_code"].to_pylist())
        yield raw, accepted, rejects


def _stage(
    name: str,
    chunks: Iterator[tuple[pd.DataFrame, pa.Table, pd.DataFrame]],
    staging: Path,
    scope: str,
) -> TableReport:
    """Stage the :func:`checked_chunks` of table ``name``: accepted rows and rejects."""
    rep = TableReport(name)
    for part, (raw, accepted, rejects) in enumerate(chunks):
        rep.read += len(raw)
        rep.accepted += accepted.num_rows
        rep.rejected += len(rejects)
        if len(rejects):
            rep.reasons.update(rejects["reason"].tolist())
            _stage_rejects(staging, name, rejects, part, scope)
        if accepted.num_rows:
            stage_table(staging, name, accepted, part=part)
    if rep.read != rep.accepted + rep.rejected:  # pragma: no cover - a bug, not bad data
        raise AssertionError(f"{name}: read {rep.read} ≠ accepted + rejected")
    return rep


def _stage_rejects(staging: Path, name: str, rejects: pd.DataFrame, part: int, scope: str) -> None:
    spec = SOURCE_TABLES[name]
    key_cols = list(TABLES[name].key)
    frame = rejects.copy()
    frame["source_table"] = spec.name
    frame["source_key"] = (
        frame[key_cols].fillna("<null>").astype(str).agg("|".join, axis=1)
        if len(frame)
        else pd.Series(dtype="string")
    )
    folder = staging / REJECTS / name / f"ingest={scope}"
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame.astype("string"), preserve_index=False)
    pq.write_table(table, folder / f"part-{part}.parquet", compression="zstd")


def _publish_rejects(staging: Path, mart: Path, name: str, scope: str) -> None:
    staged = staging / REJECTS / name / f"ingest={scope}"
    target = mart / REJECTS / name / f"ingest={scope}"
    old = target.with_name(f".old-{target.name}-{uuid.uuid4().hex[:8]}")
    if target.exists():
        target.rename(old)
    if staged.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staged.rename(target)
    shutil.rmtree(old, ignore_errors=True)
