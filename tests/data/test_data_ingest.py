"""Ingest from a real SG186-shaped database (SQLite, and PostgreSQL when reachable) into the mart."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from mart_fixture import tiny_dataset

import audit_lib.data.ingest as ingest_mod
from audit_lib.cli import main
from audit_lib.data.access import Mart
from audit_lib.data.ingest import REJECTS, ingest
from audit_lib.data.mart import table_dir
from audit_lib.data.schema import TABLES
from audit_lib.data.source import SOURCE_TABLES, write_source
from audit_lib.errors import DataError, SchemaError

TODAY = dt.date(2025, 6, 30)


def read_rejects(mart: Path | str, table: str) -> pd.DataFrame:
    """All rejected rows of ``table`` kept in the mart (strings; ``reason``, ``source_key``)."""
    files = sorted((table_dir(mart, REJECTS) / table).glob("ingest=*/*.parquet"))
    if not files:
        return pd.DataFrame(columns=[*TABLES[table].names, "reason", "source_table", "source_key"])
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


@pytest.fixture
def source(tmp_path: Path) -> tuple[str, dict[str, pa.Table]]:
    tables = tiny_dataset(n=10)
    url = f"sqlite:///{tmp_path / 'sg186.db'}"
    write_source(url, tables)
    return url, tables


def add_raw(url: str, table: str, rows: list[tuple[object, ...]]) -> None:
    """Insert rows as the driver takes them (bad types included), in the source's column order."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for row in rows:
            marks = ", ".join("?" * len(row))
            conn.exec_driver_sql(f"INSERT INTO {table} VALUES ({marks})", tuple(row))
    engine.dispose()


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def test_ingest_round_trip_matches_source(
    source: tuple[str, dict[str, pa.Table]], tmp_path: Path
) -> None:
    url, tables = source
    report = ingest(url, tmp_path / "mart", chunk_rows=100, today=TODAY)
    assert report.rejected == 0
    for name, table in tables.items():
        assert report.tables[name].read == table.num_rows == report.tables[name].accepted
    with Mart(tmp_path / "mart") as m:
        got = m.readings(None, "2025-01-01", "2025-12-31").sort_values(["cons_no", "date"])
        bills = m.bills("YZ", ["2025-02"])
    want = tables["readings"].to_pandas().sort_values(["cons_no", "date"])
    np.testing.assert_array_equal(got.cons_no.to_numpy(str), want.cons_no.to_numpy(str))
    np.testing.assert_allclose(got.kwh.to_numpy(float), want.kwh.to_numpy(float), equal_nan=True)
    assert set(got.month) == {"2025-01", "2025-02"}
    assert len(bills) == 10 and set(bills.month) == {"2025-02"}
    with Mart(tmp_path / "mart") as m:
        tickets = m.tickets().sort_values("ticket_id")
        customers = m.customers().sort_values("cons_no")
    want_t = tables["tickets"].to_pandas().sort_values("ticket_id")
    assert list(tickets.opened) == list(want_t.opened) and list(tickets.month) == list(want_t.month)
    want_c = tables["customers"].to_pandas().sort_values("cons_no")
    assert list(customers.open_date) == list(want_c.open_date)
    assert customers.close_date.isna().all()


def test_ingest_rejects_bad_rows_with_reasons(
    source: tuple[str, dict[str, pa.Table]], tmp_path: Path
) -> None:
    url, tables = source
    yz = "1000000001"
    add_raw(url, "e_mp_day_read", [
        (yz, "2025-01-05", 3.0, "YZ"),          # duplicate key
        (yz, "2025-01-32", 3.0, "YZ"),          # not a date
        (yz, "2025-01-40", None, "YZ"),          # not a date either
        (yz, "2025-01-20", "lots", "YZ"),       # kWh not a number
        (yz, "2025-01-21", -5.0, "YZ"),         # negative
        (yz, "2025-01-22", 5e9, "YZ"),          # absurd
        (yz, "2025-01-23", 5.0, "XX"),          # unknown bureau
        (yz, "2030-01-01", 5.0, "YZ"),          # in the future
        (None, "2025-01-24", 5.0, "YZ"),        # null key
    ])  # fmt: skip
    add_raw(url, "e_event", [("E-bad", yz, "M1", "2025-01-03 10:00:00", "ERC99", "YZ")])
    add_raw(
        url,
        "s_95598_wkst",
        [("T-bad", yz, None, "gossip", "2025-01-03 10:00:00", None, None, "YZ")],
    )
    add_raw(url, "a_rcvbl_flow", [(yz, 0, 10, 1, 10, None, "NOPE", 5, 0, 5, "YZ", "202501")])
    code = tables["tariffs"]["tariff_code"][0].as_py()
    add_raw(url, "a_rcvbl_flow", [
        (yz, 0, 10, 1, 10, None, code, 5, 0, -1e12, "YZ", "202412"),  # a bill of -10^12 元
        (yz, 0, 10, 0, 10, None, code, 5, 0, 5, "YZ", "202411"),      # multiplier 0
    ])  # fmt: skip
    add_raw(url, "c_meter", [
        ("M-zero", yz, 0, "2024-01-01", None, "YZ"),
        ("M-huge", yz, 1e12, "2024-01-01", None, "YZ"),
    ])  # fmt: skip
    report = ingest(url, tmp_path / "mart", today=TODAY)
    readings = report.tables["readings"]
    assert readings.read == readings.accepted + readings.rejected
    assert readings.accepted == tables["readings"].num_rows  # the original of the duplicate stays
    assert dict(readings.reasons) == {
        "duplicate_key:cons_no+date": 1, "wrong_type:date": 2, "wrong_type:kwh": 1,
        "negative_kwh:kwh": 1, "absurd_kwh:kwh": 1, "unknown_code:bureau": 1,
        "date_out_of_range:date": 1, "null:cons_no": 1,
    }  # fmt: skip
    assert dict(report.tables["meter_events"].reasons) == {"unknown_code:code": 1}
    assert dict(report.tables["tickets"].reasons) == {"unknown_code:kind": 1}
    assert dict(report.tables["bills"].reasons) == {
        "unknown_code:tariff_code": 1, "out_of_range:amount": 1, "out_of_range:multiplier": 1,
    }  # fmt: skip
    assert dict(report.tables["meters"].reasons) == {"out_of_range:multiplier": 2}
    for rep in report.tables.values():
        assert rep.read == rep.accepted + rep.rejected
    rejects = read_rejects(tmp_path / "mart", "readings")
    assert len(rejects) == 9
    bad_kwh = rejects[rejects.reason == "wrong_type:kwh"].iloc[0]
    assert bad_kwh.kwh == "lots" and bad_kwh.source_key == f"{yz}|2025-01-20"
    assert set(rejects.source_table) == {"e_mp_day_read"}
    assert (rejects.date == "2025-01-32").any()
    frame = report.rejects_frame()
    assert frame.loc[frame.reason == "negative_kwh:kwh", "reason_zh"].iloc[0].startswith("电量为负")
    assert "ingest report" in str(report)


def test_missing_table_or_column_stops_before_writing(
    source: tuple[str, dict[str, pa.Table]], tmp_path: Path
) -> None:
    url, _ = source
    ingest(url, tmp_path / "mart", today=TODAY)
    before = snapshot(tmp_path / "mart")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE c_meter DROP COLUMN T_FACTOR")
    with pytest.raises(SchemaError, match="T_FACTOR") as info:
        ingest(url, tmp_path / "mart", today=TODAY)
    assert info.value.field == "T_FACTOR"
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE e_event")
    engine.dispose()
    with pytest.raises(SchemaError, match="e_event"):
        ingest(url, tmp_path / "mart", today=TODAY)
    assert snapshot(tmp_path / "mart") == before


def test_failed_ingest_leaves_mart_as_it_was(
    source: tuple[str, dict[str, pa.Table]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = source
    ingest(url, tmp_path / "mart", today=TODAY)
    before = snapshot(tmp_path / "mart")
    add_raw(url, "e_mp_day_read", [("1000000003", "2025-01-09", 1.0, "YZ")])
    real = ingest_mod.check_chunk

    def failing(table: str, *args: object, **kwargs: object) -> object:
        if table == "meter_events":  # the last table: everything else is staged by now
            raise OSError("disk full (injected)")
        return real(table, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest_mod, "check_chunk", failing)
    with pytest.raises(OSError, match="injected"):
        ingest(url, tmp_path / "mart", today=TODAY)
    assert snapshot(tmp_path / "mart") == before
    assert not list((tmp_path / "mart").glob(".ingest-*"))


def test_reingest_same_period_creates_no_duplicates(
    source: tuple[str, dict[str, pa.Table]], tmp_path: Path
) -> None:
    url, tables = source
    ingest(url, tmp_path / "mart", today=TODAY)
    for _ in range(2):
        report = ingest(url, tmp_path / "mart", period="2025-02", bureaus=["YZ"], today=TODAY)
    assert report.tables["readings"].read == 10 * 28
    assert report.tables["customers"].read == 10
    with Mart(tmp_path / "mart") as m:
        n = m.sql("SELECT count(*) AS n, count(DISTINCT (cons_no, date)) AS k FROM readings")
        assert n.n.iloc[0] == n.k.iloc[0] == tables["readings"].num_rows
        assert len(m.bills()) == tables["bills"].num_rows


def test_reingest_removes_rows_gone_from_source(
    source: tuple[str, dict[str, pa.Table]], tmp_path: Path
) -> None:
    url, _tables = source
    ingest(url, tmp_path / "mart", today=TODAY)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "DELETE FROM e_mp_day_read WHERE ORG_NO = 'JB' AND DATA_DATE >= '2025-02-01'"
        )
    engine.dispose()
    ingest(url, tmp_path / "mart", period="2025-02", today=TODAY)
    with Mart(tmp_path / "mart") as m:
        assert len(m.readings("JB", "2025-02-01", "2025-02-28")) == 0
        assert len(m.readings("JB", "2025-01-01", "2025-01-31")) == 10 * 31


def test_parse_period_and_bad_arguments(
    source: tuple[str, dict[str, pa.Table]], tmp_path: Path
) -> None:
    with pytest.raises(DataError, match="period"):
        ingest(source[0], tmp_path / "mart", period="last spring", today=TODAY)
    url, _ = source
    with pytest.raises(DataError, match="ZZ"):
        ingest(url, tmp_path / "mart", bureaus=["ZZ"], today=TODAY)
    with pytest.raises(DataError, match="does not exist"):
        ingest(f"sqlite:///{tmp_path / 'absent.db'}", tmp_path / "mart")


def test_cli_ingest_and_schema_error_exit(
    source: tuple[str, dict[str, pa.Table]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = source
    main(
        [
            "ingest",
            "--source",
            url,
            "--mart",
            str(tmp_path / "mart"),
            "--period",
            "2025-01..2025-02",
            "--today",
            "2025-02-20",
        ]
    )
    out = capsys.readouterr().out
    assert "readings" in out and "ingest report" in out
    assert "date_out_of_range:date" in out  # readings after --today are rejected
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE r_tariff")
    engine.dispose()
    with pytest.raises(SystemExit) as info:
        main(["ingest", "--source", url, "--mart", str(tmp_path / "mart")])
    assert info.value.code == 2
    assert "r_tariff" in capsys.readouterr().err


PG_URL = os.environ.get("AUDIT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    engine = sa.create_engine(PG_URL)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:  # pragma: no cover - depends on the machine
        pytest.fail(f"PostgreSQL not reachable at {PG_URL}: {exc}")
    schema = f"sg186_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()


@pytest.mark.pg
def test_ingest_from_postgresql(pg_schema_url: str, tmp_path: Path) -> None:
    tables = tiny_dataset(n=6)
    write_source(pg_schema_url, tables)
    engine = sa.create_engine(pg_schema_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO e_mp_day_read VALUES ('1000000001', '2025-01-05', -1.5, 'YZ')"
        )
        names = set(sa.inspect(conn).get_table_names())
    engine.dispose()
    assert {t.name for t in SOURCE_TABLES.values()} <= names
    report = ingest(pg_schema_url, tmp_path / "mart", today=TODAY)
    assert dict(report.tables["readings"].reasons) == {"negative_kwh:kwh": 1}
    with Mart(tmp_path / "mart") as m:
        got = m.readings(None, "2025-01-01", "2025-02-28")
        events = m.meter_events()
    assert len(got) == tables["readings"].num_rows
    assert pd.api.types.is_datetime64_any_dtype(events.time) and len(events) == 4


def test_key_tracker_matches_pandas_duplicated_across_chunks(rng: np.random.Generator) -> None:
    from audit_lib.data.checks import KeyTracker

    keys = pd.DataFrame({"cons_no": rng.integers(0, 400, 5000).astype(str),
                         "date": rng.integers(0, 9, 5000)})  # fmt: skip
    tracker = KeyTracker()
    got = np.concatenate(
        [tracker.duplicated(keys.iloc[i : i + 333]) for i in range(0, len(keys), 333)]
    )
    np.testing.assert_array_equal(got, keys.duplicated().to_numpy())
    assert len(tracker.runs) <= 8


def test_check_chunk_refuses_implausible_capacity_and_price() -> None:
    from audit_lib.data.checks import CodeLists, KeyTracker, check_chunk, reason_label

    codes = CodeLists(bureaus={"YZ"}, tariffs={"T1"})
    raw = pd.DataFrame({
        "cons_no": ["1", "2", "3"], "station_id": "S1", "area_id": "A1",
        "cust_class": "residential", "industry": "0", "tariff_code": "T1", "voltage_kv": "0.4",
        "capacity_kva": ["-5", "0", "8"], "status": "active", "open_date": "2020-01-01",
        "bureau": "YZ",
    })  # fmt: skip
    accepted, rejects = check_chunk("customers", raw, codes=codes, keys=KeyTracker(), today=TODAY)
    assert accepted["cons_no"].to_pylist() == ["3"]
    assert rejects["reason"].tolist() == ["out_of_range:capacity_kva"] * 2
    assert reason_label("out_of_range:capacity_kva", "en").startswith("value out of its plausible")
    tariffs = pd.DataFrame({
        "tariff_code": ["T1", "T2"], "name_zh": "x", "kind": "flat", "classes": "residential",
        "price": ["0.52", "1e6"], "valid_from": "2020-01-01",
    })  # fmt: skip
    accepted, rejects = check_chunk("tariffs", tariffs, codes=codes, keys=KeyTracker(), today=TODAY)
    assert accepted["tariff_code"].to_pylist() == ["T1"]
    assert rejects["reason"].tolist() == ["out_of_range:price"]
