"""The areas × days supply matrix read with Arrow equals the DuckDB way row by row."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from audit_lib.data.access import Mart
from audit_lib.data.balance import supply_matrix
from audit_lib.data.integrity import record_manifest
from audit_lib.demo.generate import DemoConfig, generate_demo
from audit_lib.detect.context import DetectionContext

START = dt.date(2024, 1, 1)


def _duckdb_way(mart: Mart, bureau: str, index: pd.Index, dates: pd.DatetimeIndex) -> np.ndarray:
    supply = np.full((len(index), len(dates)), np.nan)
    rows = mart.area_supply(bureau, dates[0].date(), dates[-1].date())
    r = index.get_indexer(rows["area_id"].astype(str))
    c = dates.get_indexer(pd.DatetimeIndex(rows["date"]))
    ok = (r >= 0) & (c >= 0)
    supply[r[ok], c[ok]] = rows["supply_kwh"].to_numpy(dtype=float)[ok]
    return supply


@pytest.fixture(scope="module")
def mart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("city")
    generate_demo(out, DemoConfig(bureaus=1, customers=400, days=90, start=START, seed=12))
    # a repeated (area, day) with another value and a row of an unknown area, in a later file
    month = out / "mart" / "area_supply" / "bureau=YZ" / "month=2024-02"
    first = pq.read_table(sorted(month.glob("*.parquet"))[0])
    extra = pa.table(
        {
            "area_id": pa.array([first.column("area_id")[0].as_py(), "NO-SUCH-AREA"]),
            "date": pa.array([first.column("date")[0].as_py()] * 2, pa.date32()),
            "supply_kwh": pa.array([123456.5, 7.0]),
        }
    )
    pq.write_table(extra.cast(first.schema), month / "zz-extra.parquet")
    record_manifest(out / "mart")  # a file added on purpose: the manifest says so
    return out / "mart"


@pytest.mark.parametrize(
    ("first", "last"), [(START, dt.date(2024, 3, 30)), (dt.date(2024, 1, 20), dt.date(2024, 2, 10))]
)
def test_supply_matrix_equals_duckdb_way(mart: Path, first: dt.date, last: dt.date) -> None:
    with Mart(mart) as m:
        ctx = DetectionContext(m, "YZ", first, last)
        index = pd.Index(m.areas("YZ")["area_id"].drop_duplicates().to_numpy().astype(str))
        dates = pd.date_range(first, last, freq="D")
        got = supply_matrix(ctx, index, dates)
        want = _duckdb_way(m, "YZ", index, dates)
    assert got.shape == (len(index), len(dates))
    assert np.isfinite(got).mean() > 0.9
    assert np.array_equal(got, want, equal_nan=True)
    if first == START:
        assert (got == 123456.5).sum() == 1  # the repeated day keeps the later file's value
