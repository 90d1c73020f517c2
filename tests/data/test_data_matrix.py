"""The customers × days matrix built from a real Parquet mart, both scan methods."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from mart_fixture import write_tiny_mart

from audit_lib.data.access import Mart
from audit_lib.data.mart import write_table
from audit_lib.data.matrix import ConsumptionMatrix, build_matrix
from audit_lib.data.matrix_scan import _float32_buffers
from audit_lib.errors import DataError

METHODS = ["arrow", "duckdb"]


@pytest.fixture
def mart(tmp_path: Path) -> tuple[Mart, dict[str, pa.Table]]:
    tables = write_tiny_mart(tmp_path / "mart", n=15, days=70)
    return Mart(tmp_path / "mart"), tables


def expected_pivot(tables: dict[str, pa.Table], bureau: str, start: str, end: str) -> pd.DataFrame:
    r = tables["readings"].to_pandas()
    r = r[(r.bureau == bureau) & r.date.between(start, end)]
    order = [c for c, b in zip(tables["customers"]["cons_no"].to_pylist(),
                               tables["customers"]["bureau"].to_pylist(), strict=True) if b == bureau]  # fmt: skip
    days = pd.date_range(start, end)
    return r.pivot(index="cons_no", columns="date", values="kwh").reindex(index=order, columns=days)


@pytest.mark.parametrize("method", METHODS)
def test_build_matrix_equals_pivot_of_readings(
    mart: tuple[Mart, dict[str, pa.Table]], method: str
) -> None:
    m, tables = mart
    mat = build_matrix(m, "JB", "2025-01-10", "2025-03-05", method=method)  # type: ignore[arg-type]
    want = expected_pivot(tables, "JB", "2025-01-10", "2025-03-05")
    assert mat.values.dtype == np.float32
    assert mat.shape == want.shape
    assert list(mat.cons_no) == list(want.index)
    assert (mat.dates == want.columns).all()
    np.testing.assert_array_equal(np.isnan(mat.values), want.isna().to_numpy())
    np.testing.assert_allclose(mat.values, want.to_numpy(np.float32), equal_nan=True)
    assert mat.duplicates == 0 and mat.orphans == 0


@pytest.mark.parametrize("method", METHODS)
def test_build_matrix_counts_duplicates_and_orphans(
    mart: tuple[Mart, dict[str, pa.Table]], method: str
) -> None:
    m, tables = mart
    r = tables["readings"].to_pandas()
    yz = r[(r.bureau == "YZ") & (r.date < "2025-02-01")]
    first = yz.iloc[0]
    extra = pd.DataFrame(
        {"cons_no": [first.cons_no, first.cons_no, "9999999999", "9999999999", "9999999998"],
         "date": [first.date] * 5, "kwh": [123.0, np.nan, 1.0, 2.0, 3.0], "bureau": "YZ"}
    )  # fmt: skip
    write_table(
        m.root, "readings", pa.Table.from_pandas(pd.concat([yz, extra]), preserve_index=False)
    )
    mat = build_matrix(m, "YZ", "2025-01-01", "2025-01-31", method=method)  # type: ignore[arg-type]
    assert mat.duplicates == 2
    assert mat.orphans == 3
    row = list(mat.cons_no).index(first.cons_no)
    assert mat.values[row, (first.date - pd.Timestamp("2025-01-01")).days] == 123.0


@pytest.mark.parametrize("method", METHODS)
def test_build_matrix_customer_subset_keeps_given_order(
    mart: tuple[Mart, dict[str, pa.Table]], method: str
) -> None:
    m, _tables = mart
    full = build_matrix(m, "YZ", "2025-01-01", "2025-02-28", method=method)  # type: ignore[arg-type]
    pick = [full.cons_no[7], full.cons_no[2], "not-a-customer"]
    sub = build_matrix(m, "YZ", "2025-01-01", "2025-02-28", pick, method=method)  # type: ignore[arg-type]
    assert list(sub.cons_no) == pick
    np.testing.assert_array_equal(sub.values[0], full.values[7])
    np.testing.assert_array_equal(sub.values[1], full.values[2])
    assert np.isnan(sub.values[2]).all()
    assert sub.orphans == 0


def test_matrix_helpers(mart: tuple[Mart, dict[str, pa.Table]]) -> None:
    m, _tables = mart
    mat = build_matrix(m, "YZ", "2025-01-15", "2025-03-10")
    long = mat.frame()
    assert len(long) == int((~np.isnan(mat.values)).sum())
    back = long.pivot(index="cons_no", columns="date", values="kwh").reindex(
        index=mat.cons_no, columns=mat.dates
    )
    np.testing.assert_array_equal(back.to_numpy(np.float32), mat.values)
    monthly = mat.months()
    assert [str(p) for p in monthly.columns] == ["2025-01", "2025-02", "2025-03"]
    want = long.assign(month=long.date.dt.to_period("M")).groupby(["cons_no", "month"]).kwh.sum()
    got = monthly.stack()
    np.testing.assert_allclose(got.loc[want.index].to_numpy(), want.to_numpy(), rtol=1e-5)
    mask = np.zeros(mat.shape[0], dtype=bool)
    mask[[1, 4]] = True
    sub = mat.select(mask)
    assert list(sub.cons_no) == [mat.cons_no[1], mat.cons_no[4]]
    with pytest.raises(DataError, match="mask"):
        mat.select(mask[:-1])


def test_matrix_rejects_bad_shapes_and_unknown_bureau(
    mart: tuple[Mart, dict[str, pa.Table]],
) -> None:
    m, _ = mart
    with pytest.raises(DataError, match="float32"):
        ConsumptionMatrix(
            np.zeros((2, 3)), np.array(["a", "b"]), pd.date_range("2025-01-01", periods=3)
        )
    with pytest.raises(DataError, match="does not match"):
        ConsumptionMatrix(np.zeros((2, 3), np.float32), np.array(["a"]),
                          pd.date_range("2025-01-01", periods=3))  # fmt: skip
    with pytest.raises(DataError, match="XX"):
        build_matrix(m, "XX", "2025-01-01", "2025-01-31")
    with pytest.raises(DataError, match="empty period"):
        build_matrix(m, "YZ", "2025-02-01", "2025-01-01")


@pytest.mark.parametrize("method", METHODS)
def test_build_matrix_keeps_zero_kwh_and_drops_days_outside_the_period(
    mart: tuple[Mart, dict[str, pa.Table]], method: str
) -> None:
    m, tables = mart
    r = tables["readings"].to_pandas()
    jan = r[(r.bureau == "JB") & (r.date < "2025-02-01")].assign(month="2025-01")
    first = jan.iloc[0]
    jan.loc[jan.index[0], "kwh"] = 0.0
    stray = pd.DataFrame(  # a December reading filed in January's partition
        {"cons_no": [first.cons_no], "date": [pd.Timestamp("2024-12-31")], "kwh": [5.0],
         "bureau": ["JB"], "month": ["2025-01"]}
    )  # fmt: skip
    table = pa.Table.from_pandas(pd.concat([jan, stray]), preserve_index=False)
    write_table(m.root, "readings", table)
    mat = build_matrix(m, "JB", "2025-01-01", "2025-01-31", method=method)  # type: ignore[arg-type]
    row = list(mat.cons_no).index(first.cons_no)
    cell = mat.values[row, (first.date - pd.Timestamp("2025-01-01")).days]
    assert cell == 0.0 and not np.signbit(cell)
    want = expected_pivot({**tables, "readings": pa.Table.from_pandas(jan, preserve_index=False)}, "JB", "2025-01-01",
                          "2025-01-31")  # fmt: skip
    np.testing.assert_array_equal(np.isnan(mat.values), want.isna().to_numpy())
    assert mat.duplicates == 0 and mat.orphans == 0


def test_build_matrix_of_a_larger_bureau_equals_its_values(tmp_path: Path) -> None:
    """5,000 customers × 40 days with nulls and zeros, written and read back."""
    n, days = 5000, 40
    rng = np.random.default_rng(7)
    cons = np.char.add("51", np.char.zfill(np.arange(n).astype(str), 8))
    values = rng.gamma(2.0, 4.0, size=(n, days)).astype(np.float32)
    values[rng.random((n, days)) < 0.05] = np.nan
    values[rng.random((n, days)) < 0.01] = 0.0
    dates = pd.date_range("2025-01-01", periods=days)
    root = tmp_path / "mart"
    customers = tiny_customers(cons, "BX")
    write_table(root, "customers", customers)
    write_table(
        root,
        "readings",
        pa.table(
            {
                "cons_no": np.repeat(cons, days),
                "date": np.tile(dates.to_numpy().astype("datetime64[D]"), n),
                "kwh": pa.array(values.ravel(), from_pandas=True),
                "bureau": ["BX"] * (n * days),
            }
        ),
    )
    with Mart(root) as m:
        mat = build_matrix(m, "BX", dates[0], dates[-1])
    np.testing.assert_array_equal(mat.cons_no, cons)
    np.testing.assert_array_equal(mat.values, values)
    assert not np.signbit(mat.values[mat.values == 0]).any()
    assert mat.duplicates == 0 and mat.orphans == 0


def tiny_customers(cons: np.ndarray, bureau: str) -> pa.Table:
    """A customers table with every required column for ``cons`` (one station and area)."""
    n = len(cons)
    return pa.table(
        {
            "cons_no": cons,
            "name": ["*"] * n,
            "phone": pa.nulls(n, pa.string()),
            "id_no": pa.nulls(n, pa.string()),
            "station_id": [f"{bureau}-S1"] * n,
            "area_id": [f"{bureau}-A1"] * n,
            "cust_class": ["residential"] * n,
            "industry": ["urban_household"] * n,
            "tariff_code": ["RES1"] * n,
            "voltage_kv": np.full(n, 0.22),
            "capacity_kva": np.full(n, 8.0),
            "status": ["active"] * n,
            "open_date": np.full(n, np.datetime64("2010-01-01", "D")),
            "close_date": pa.nulls(n, pa.date32()),
            "bureau": [bureau] * n,
        }
    )


def test_float32_buffers_of_a_slice_match_its_values() -> None:
    values = pa.array([1.5, None, 0.0, 2.0, None, 3.0, 4.0, None, 5.0, 6.0, None], pa.float32())
    for start in (0, 3, 9):
        part = values.slice(start, 11 - start)
        floats, bitmap, offset = _float32_buffers(part)
        valid = (
            bitmap[(offset + np.arange(len(part))) >> 3] >> ((offset + np.arange(len(part))) & 7)
        ) & 1
        want = part.to_numpy(zero_copy_only=False)
        np.testing.assert_array_equal(np.where(valid == 1, floats, np.nan), want)
    floats, bitmap, _ = _float32_buffers(pa.array([1.0, 2.0], pa.float64()).slice(1))
    assert floats.tolist() == [2.0] and bitmap.size == 0


def test_build_matrix_keeps_the_first_of_a_repeated_customer(tmp_path: Path) -> None:
    cons = np.array(["5100000001", "5100000002", "5100000001", "5100000003"])
    dates = pd.date_range("2025-03-01", periods=3)
    root = tmp_path / "mart"
    write_table(root, "customers", tiny_customers(cons, "BX"))
    readings = {"cons_no": ["5100000001", "5100000003"], "date": dates[:2].date, "kwh": [1.0, 3.0]}
    write_table(root, "readings", pa.table({**readings, "bureau": ["BX", "BX"]}))
    with Mart(root) as m:
        mat = build_matrix(m, "BX", dates[0], dates[-1])
    assert list(mat.cons_no) == ["5100000001", "5100000002", "5100000003"]
    want = np.full((3, 3), np.nan, dtype=np.float32)
    want[0, 0], want[2, 1] = 1.0, 3.0
    np.testing.assert_array_equal(mat.values, want)
