"""Repeated readings settled by the scan (set aside, then only those cells) against the old
way (one DuckDB GROUP BY over every reading), on generated data with injected duplicates."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from audit_lib.data import matrix as matrix_module
from audit_lib.data.access import Mart
from audit_lib.data.mart import write_table
from audit_lib.data.matrix import build_matrix
from audit_lib.data.matrix_scan import ScanLedger
from audit_lib.demo.generate import DemoConfig, generate_demo

START, END = dt.date(2025, 1, 1), dt.date(2025, 4, 30)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A 3,000-customer bureau over 120 days, with its injected duplicates and orphans."""
    out = tmp_path_factory.mktemp("repeats")
    config = DemoConfig(bureaus=1, customers=3_000, days=120, start=START, seed=5)
    generate_demo(out, config)
    with Mart(out / "mart") as mart:
        bureau = mart.bureau_codes()[0]
    return out / "mart", bureau


def old_way(mart: Mart, bureau: str, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    """The matrix with every repeated cell settled by the DuckDB GROUP BY: the fallback taken
    when the set-aside readings miss one (what two threads racing on one cell leave)."""
    real = matrix_module.arrow_scatter

    def racing(*args: object, **kwargs: object) -> ScanLedger:
        ledger = real(*args, **kwargs)  # type: ignore[arg-type]
        return replace(ledger, repeat_cells=ledger.repeat_cells[1:])

    with monkeypatch.context() as m:
        m.setattr(matrix_module, "arrow_scatter", racing)
        m.setattr(matrix_module, "settle_repeats", lambda flat, ledger: 1 / 0)
        built = build_matrix(mart, bureau, START, END)
    assert built.ledger is None  # the fallback keeps no ledger
    return built.values


def test_settled_repeats_equal_the_group_by_bit_for_bit(
    generated: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, bureau = generated
    with Mart(root) as mart:
        new = build_matrix(mart, bureau, START, END)
        old = old_way(mart, bureau, monkeypatch)
        again = build_matrix(mart, bureau, START, END, method="duckdb")
    assert new.duplicates >= 10  # the generator injects them: the test sees the repeat path
    assert new.ledger is not None
    np.testing.assert_array_equal(new.values.view(np.int32), old.view(np.int32))
    np.testing.assert_array_equal(new.values.view(np.int32), again.values.view(np.int32))
    assert again.duplicates == new.duplicates and again.orphans == new.orphans


def test_ledger_lists_the_repeated_cells_and_orphan_rows(generated: tuple[Path, str]) -> None:
    root, bureau = generated
    with Mart(root) as mart:
        mat = build_matrix(mart, bureau, START, END)
        groups = mart.sql(
            """SELECT cons_no, date, count(*) AS n FROM readings WHERE bureau = ?
               AND date BETWEEN ? AND ? GROUP BY ALL HAVING count(*) > 1""",
            [bureau, START, END],
        )
        orphans = mart.sql(
            """SELECT count(*) AS n, min(date) AS d0, max(date) AS d1 FROM readings r
               WHERE bureau = ? AND cons_no NOT IN (SELECT cons_no FROM customers)""",
            [bureau],
        )
        span = mart.sql("SELECT min(date) AS d0, max(date) AS d1 FROM readings")
    ledger = mat.ledger
    assert ledger is not None
    cells, counts = ledger.repeated()
    row = pd.Index(mat.cons_no).get_indexer(groups.cons_no)
    day = (pd.to_datetime(groups.date) - pd.Timestamp(START)).dt.days.to_numpy()
    want = pd.Series(groups.n.to_numpy(), index=row * mat.shape[1] + day).sort_index()
    assert (row >= 0).all()
    np.testing.assert_array_equal(cells, want.index.to_numpy())
    np.testing.assert_array_equal(counts, want.to_numpy())
    assert ledger.strays.num_rows == mat.orphans == int(orphans.n.iloc[0]) > 0
    assert ledger.outside == 0 and ledger.unwanted == 0
    epoch = dt.date(1970, 1, 1)
    assert epoch + dt.timedelta(days=ledger.first_day or 0) == span.d0.iloc[0].date()
    assert epoch + dt.timedelta(days=ledger.last_day or 0) == span.d1.iloc[0].date()


def test_repeats_take_the_largest_non_null_value(tmp_path: Path) -> None:
    from mart_fixture import write_tiny_mart

    tables = write_tiny_mart(tmp_path / "mart", n=15, days=70)
    r = tables["readings"].to_pandas()
    yz = r[r.bureau == "YZ"]
    a, b, c = yz.iloc[0], yz.iloc[50], yz.iloc[90]
    extra = pd.DataFrame(
        {"cons_no": [a.cons_no, a.cons_no, b.cons_no, b.cons_no, c.cons_no, "9999999999"],
         "date": [a.date, a.date, b.date, b.date, c.date, a.date],
         "kwh": [a.kwh + 5.0, np.nan, -3.0, 0.0, np.nan, 1.0], "bureau": "YZ"}
    )  # fmt: skip
    with Mart(tmp_path / "mart") as mart:
        write_table(mart.root, "readings", pa.Table.from_pandas(pd.concat([yz, extra]),
                                                                preserve_index=False))  # fmt: skip
        # a row without cons_no (the mart writer refuses it: written as a raw extra file)
        part = Path(mart.files("readings", ["YZ"], ["2025-01"])[0])
        schema = pq.read_schema(part)
        schema = pa.schema([f.with_nullable(True) for f in schema])
        null_key = pa.table({"cons_no": [None], "date": [a.date.date()], "kwh": [1.0]})
        pq.write_table(null_key.select(schema.names).cast(schema), part.with_name("extra.parquet"))
        mat = build_matrix(mart, "YZ", "2025-01-01", "2025-03-11")
    rows = {k: list(mat.cons_no).index(k) for k in (a.cons_no, b.cons_no, c.cons_no)}
    col = {
        k: (v.date - pd.Timestamp("2025-01-01")).days for k, v in zip("abc", (a, b, c), strict=True)
    }
    assert mat.values[rows[a.cons_no], col["a"]] == np.float32(a.kwh + 5.0)
    assert mat.values[rows[b.cons_no], col["b"]] == np.float32(max(b.kwh, 0.0))
    assert mat.values[rows[c.cons_no], col["c"]] == np.float32(c.kwh)  # null never wins
    assert mat.duplicates == 5 and mat.orphans == 2
    assert mat.ledger is not None
    assert sorted(mat.ledger.strays.column(0).to_pylist(), key=str) == ["9999999999", None]
