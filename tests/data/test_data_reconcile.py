"""Reconciliation of the mart with its source database (与源系统核对), on SQLite and on the
PostgreSQL server: after an ingest nothing differs; rows corrected, added or removed in the
source afterwards, and a mart file altered, are named by table, customer and month."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from mart_fixture import tiny_dataset
from test_data_ingest import pg_schema_url  # noqa: F401 - the PostgreSQL schema fixture

from audit_lib.cli import main
from audit_lib.data.access import Mart
from audit_lib.data.ingest import ingest
from audit_lib.data.integrity import record_manifest
from audit_lib.data.quality import HIT_COLUMNS
from audit_lib.data.reconcile import reconcile
from audit_lib.data.source import source_table, write_source

TODAY = dt.date(2025, 6, 30)


def change_source(url: str) -> tuple[str, str]:
    """Correct a reading and remove a bill in the source; return the two customers."""
    reads, bills = source_table("readings"), source_table("bills")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        first = sa.select(reads.c.CONS_NO).where(reads.c.ORG_NO == "YZ").order_by(reads.c.CONS_NO)
        read = conn.execute(first.limit(1)).scalar_one()
        conn.execute(
            sa.update(reads)
            .where(read == reads.c.CONS_NO, dt.date(2025, 2, 3) == reads.c.DATA_DATE)
            .values(PAP_E=reads.c.PAP_E + 7)
        )
        first = sa.select(bills.c.CONS_NO).where(bills.c.ORG_NO == "JB").order_by(bills.c.CONS_NO)
        bill = conn.execute(first.limit(1)).scalar_one()
        conn.execute(sa.delete(bills).where(bill == bills.c.CONS_NO, bills.c.RCVBL_YM == "202501"))
    engine.dispose()
    return read, bill


def run_case(url: str, tmp_path: Path) -> None:
    write_source(url, tiny_dataset(n=8))
    ingest(url, tmp_path / "mart", today=TODAY)
    with Mart(tmp_path / "mart") as m:
        assert reconcile(url, m, today=TODAY).empty  # just ingested: nothing differs
    read, bill = change_source(url)
    with Mart(tmp_path / "mart") as m:
        hits = reconcile(url, m, today=TODAY)
        scoped = reconcile(url, m, today=TODAY, period="2025-02", bureaus=["YZ"])
    assert list(hits.columns) == HIT_COLUMNS
    got = {(h.detail.split(":")[0], h.entity, h.month) for h in hits.itertuples()}
    assert got == {("readings", read, "2025-02"), ("bills", bill, "2025-01")}
    by = hits.set_index(hits.detail.str.split(":").str[0])
    assert (
        "内容不同" in by.loc["readings", "detail"]
        and "values differ" in by.loc["readings", "detail"]
    )
    assert "source 0 rows, mart 1 rows" in by.loc["bills", "detail"]
    assert set(hits["check"]) == {"source_mismatch"} and set(hits.entity_kind) == {"customer"}
    assert len(scoped) == 1 and scoped.entity.iloc[0] == read  # the bill is outside the scope
    ingest(url, tmp_path / "mart", today=TODAY)  # a new ingest takes the changes
    with Mart(tmp_path / "mart") as m:
        assert reconcile(url, m, today=TODAY).empty


def test_reconcile_names_what_changed_in_sqlite_source(tmp_path: Path) -> None:
    run_case(f"sqlite:///{tmp_path / 'sg186.db'}", tmp_path)


@pytest.mark.pg
def test_reconcile_names_what_changed_in_postgresql_source(
    pg_schema_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    run_case(pg_schema_url, tmp_path)


def test_altered_mart_file_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'sg186.db'}"
    write_source(url, tiny_dataset(n=5))
    ingest(url, tmp_path / "mart", today=TODAY)
    part = sorted((tmp_path / "mart").glob("payments/**/*.parquet"))[0]
    table = pq.read_table(part)
    pq.write_table(table.slice(1), part)  # a payment lost from the mart
    record_manifest(tmp_path / "mart")  # not a damaged file: a mart that lost a row
    lost = table.column("cons_no")[0].as_py()
    with Mart(tmp_path / "mart") as m:
        hits = reconcile(url, m, today=TODAY)
    assert (
        hits.entity.tolist() == [lost] and "payments: source 1 rows, mart 0 rows" in hits.detail[0]
    )
    code = main(["dq", "--mart", str(tmp_path / "mart"), "--source", url, "--today", "2025-06-30"])
    assert code in (0, None)
    out = capsys.readouterr().out
    assert "source_mismatch" in out and "与源系统不符" in out
