"""The mart writer (atomic partition replace) and the Mart query API over real Parquet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from mart_fixture import tiny_dataset, write_tiny_mart

from audit_lib.data.access import Mart, months_between
from audit_lib.data.mart import conform, partitions, publish_table, stage_table, write_table
from audit_lib.data.schema import READINGS
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
