"""The mart writer (atomic partition replace) and the Mart query API over real Parquet."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mart_fixture import tiny_dataset, write_tiny_mart

from audit_lib.data.access import Mart
from audit_lib.data.mart import (
    conform,
    partitions,
    publish_table,
    split_partitions,
    stage_table,
    write_table,
)
from audit_lib.data.periods import months_between
from audit_lib.data.schema import CUSTOMERS, READINGS
from audit_lib.errors import DataError, SchemaError


@pytest.fixture
def mart(tmp_path: Path) -> tuple[Path, dict[str, pa.Table]]:
    root = tmp_path / "mart"
    return root, write_tiny_mart(root)


def test_write_table_twice_keeps_one_copy(mart: tuple[Path, dict[str, pa.Table]]) -> None:
    root, tables = mart
    write_table(root, "readings", tables["readings"])
    with Mart(root) as m:
        assert len(m.sql("SELECT * FROM readings")) == tables["readings"].num_rows
        assert len(m.tariffs()) == tables["tariffs"].num_rows


def test_write_table_replaces_only_touched_partitions(
    mart: tuple[Path, dict[str, pa.Table]],
) -> None:
    root, tables = mart
    readings = tables["readings"].to_pandas()
    jan_yz = readings[(readings.bureau == "YZ") & (readings.date < "2025-02-01")].head(5)
    write_table(root, "readings", pa.Table.from_pandas(jan_yz, preserve_index=False))
    with Mart(root) as m:
        counts = m.sql("SELECT bureau, month, count(*) AS n FROM readings GROUP BY ALL")
    n = counts.set_index(["bureau", "month"])["n"]
    assert n[("YZ", "2025-01")] == 5
    assert (
        n[("YZ", "2025-02")] == ((readings.bureau == "YZ") & (readings.date >= "2025-02-01")).sum()
    )
    assert (
        n[("JB", "2025-01")] == ((readings.bureau == "JB") & (readings.date < "2025-02-01")).sum()
    )


def test_publish_table_with_scope_removes_stale_partitions(
    mart: tuple[Path, dict[str, pa.Table]], tmp_path: Path
) -> None:
    root, tables = mart
    readings = tables["readings"].to_pandas()
    feb_yz = readings[(readings.bureau == "YZ") & (readings.date >= "2025-02-01")]
    staging = tmp_path / "staging"
    stage_table(staging, READINGS, pa.Table.from_pandas(feb_yz, preserve_index=False))
    publish_table(staging, root, READINGS, bureaus=["YZ"], months=["2025-01", "2025-02"])
    left = {str(p) for p in partitions(root, READINGS)}
    assert left == {"bureau=YZ/month=2025-02", "bureau=JB/month=2025-01", "bureau=JB/month=2025-02"}


def test_conform_names_missing_column() -> None:
    data = tiny_dataset()["readings"].drop_columns(["kwh"])
    with pytest.raises(SchemaError, match="kwh") as info:
        conform(READINGS, data)
    assert info.value.field == "kwh"


def test_mart_readings_filters_bureau_and_days(mart: tuple[Path, dict[str, pa.Table]]) -> None:
    root, tables = mart
    expected = tables["readings"].to_pandas()
    expected = expected[
        (expected.bureau == "YZ") & expected.date.between("2025-01-20", "2025-02-05")
    ]
    with Mart(root) as m:
        got = m.readings("YZ", "2025-01-20", "2025-02-05")
    assert len(got) == len(expected)
    assert set(got.bureau) == {"YZ"}
    assert got.date.min() == pd.Timestamp("2025-01-20") and got.date.max() == pd.Timestamp(
        "2025-02-05"
    )
    merged = got.merge(expected, on=["cons_no", "date"], suffixes=("", "_x"))
    np.testing.assert_allclose(merged.kwh.to_numpy(float), merged.kwh_x.to_numpy(float))


def test_mart_reads_only_named_partitions(mart: tuple[Path, dict[str, pa.Table]]) -> None:
    root, _ = mart
    # a corrupt file in another bureau's partition: only a query that opens it may fail
    (root / "readings" / "bureau=JB" / "month=2025-01" / "part-9.parquet").write_bytes(b"junk")
    with Mart(root) as m:
        assert len(m.readings("YZ", "2025-01-01", "2025-01-31")) > 0
        assert len(m.readings("JB", "2025-02-01", "2025-02-28")) > 0
        with pytest.raises(Exception, match="part-9"):
            m.readings("JB", "2025-01-01", "2025-01-31")


def test_mart_tables_and_sql(mart: tuple[Path, dict[str, pa.Table]]) -> None:
    root, tables = mart
    with Mart(root) as m:
        assert list(m.bureaus().bureau) == ["JB", "YZ"]
        assert m.bureau_codes() == ["JB", "YZ"]
        assert len(m.customers()) == tables["customers"].num_rows
        assert set(m.customers("JB").bureau) == {"JB"}
        bills = m.bills("YZ", ["2025-02"])
        assert set(bills.month) == {"2025-02"} and set(bills.bureau) == {"YZ"}
        assert len(m.payments()) == tables["payments"].num_rows
        assert len(m.tickets("YZ")) == 3 and len(m.meter_events()) == 4
        assert len(m.meters("YZ")) == len(m.customers("YZ"))
        assert len(m.areas()) == 6 and len(m.stations("YZ")) == 2
        supply = m.area_supply("JB", "2025-02-01", "2025-02-28")
        assert len(supply) == 3 * 28
        total = m.sql("SELECT sum(kwh) AS s FROM bills WHERE bureau = ?", ["YZ"]).s.iloc[0]
        assert total == pytest.approx(
            float(
                pd.Series(tables["bills"]["kwh"].to_pylist())[
                    np.array(tables["bills"]["bureau"].to_pylist()) == "YZ"
                ].sum()
            )
        )
        with pytest.raises(DataError, match="does not hold"):
            m.sql("SELECT * FROM no_such_table")


def test_mart_missing_folder_and_empty_table(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        Mart(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with Mart(tmp_path / "empty") as m:
        frame = m.readings("YZ", "2025-01-01", "2025-01-31")
        assert len(frame) == 0 and list(frame.columns) == READINGS.names


def test_months_between_spans_years() -> None:
    import datetime as dt

    assert months_between(dt.date(2024, 11, 15), dt.date(2025, 2, 1)) == [
        "2024-11", "2024-12", "2025-01", "2025-02"
    ]  # fmt: skip


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _shuffled_chunks(table: pa.Table, pieces: int, seed: int) -> pa.Table:
    """``table`` in shuffled row order, as many chunks (so a threaded writer could reorder)."""
    order = np.random.default_rng(seed).permutation(table.num_rows)
    shuffled = table.take(pa.array(order))
    size = -(-table.num_rows // pieces)
    return pa.concat_tables(shuffled.slice(i, size) for i in range(0, table.num_rows, size))


def test_writing_the_same_table_twice_gives_identical_files(tmp_path: Path) -> None:
    tables = tiny_dataset(n=40, days=90)
    readings = _shuffled_chunks(tables["readings"], 50, seed=3)
    customers = _shuffled_chunks(tables["customers"], 7, seed=4)
    for copy in ("a", "b"):
        stage_table(tmp_path / copy, READINGS, readings, part=2)
        stage_table(tmp_path / copy, CUSTOMERS, customers)
        stage_table(tmp_path / copy, "tariffs", tables["tariffs"])
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert len(a) == 2 * 3 + 2 + 1  # 2 bureaus × 3 months, 2 customer files, tariffs
    assert "readings/bureau=JB/month=2025-03/part-2-0.parquet" in a
    assert a == b


def test_staged_partitions_keep_input_row_order(tmp_path: Path) -> None:
    readings = _shuffled_chunks(tiny_dataset(n=30, days=60)["readings"], 40, seed=5)
    stage_table(tmp_path, READINGS, readings)
    frame = readings.to_pandas()
    for rel in partitions(tmp_path, READINGS):
        bureau, month = (part.split("=", 1)[1] for part in rel.parts)
        got = pq.read_table(tmp_path / "readings" / rel).to_pandas()
        want = frame[(frame.bureau == bureau) & (frame.date.dt.strftime("%Y-%m") == month)]
        assert len(got) == len(want) > 0
        assert list(got.cons_no) == list(want.cons_no)
        assert list(pd.to_datetime(got.date)) == list(want.date)


def test_split_partitions_groups_rows_and_rejects_null_keys() -> None:
    data = pa.table(
        {"bureau": ["B", "A", "B", "A"], "month": ["2", "1", "1", "1"], "x": [0, 1, 2, 3]}
    )
    parts = split_partitions(data, ["bureau", "month"])
    assert [(values, rows["x"].to_pylist()) for values, rows in parts] == [
        (("A", "1"), [1, 3]),
        (("B", "1"), [2]),
        (("B", "2"), [0]),
    ]
    with pytest.raises(SchemaError, match="bureau"):
        split_partitions(pa.table({"bureau": ["A", None]}), ["bureau"])
