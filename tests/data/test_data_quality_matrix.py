"""The missing, duplicate, orphan and negative-reading checks read a matrix already built (a detection context's)
and find exactly the hits of their own way (own matrix build, DuckDB GROUP BY per partition,
an anti-join of every reading)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit_lib.data.access import Mart
from audit_lib.data.integrity import record_manifest
from audit_lib.data.matrix import build_matrix
from audit_lib.data.quality import run_checks
from audit_lib.data.quality_matrix import BuiltMatrix, covering, negative_readings
from audit_lib.demo.generate import DemoConfig, generate_demo
from audit_lib.detect.context import DetectionContext

START = dt.date(2025, 1, 1)
CHECKS = ["missing_readings", "duplicate_readings", "orphans", "negative_readings"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A 3,000-customer bureau over 120 days with injected gaps, duplicates and orphans."""
    out = tmp_path_factory.mktemp("dq_matrix")
    generate_demo(out, DemoConfig(bureaus=1, customers=3_000, days=120, start=START, seed=7))
    with Mart(out / "mart") as mart:
        bureau = mart.bureau_codes()[0]
    return out / "mart", bureau


def context_matrix(mart: Mart, bureau: str, history: int, start: int = 60) -> BuiltMatrix:
    """A detection context's matrix: period from day ``start`` on, ``history`` days before."""
    ctx = DetectionContext(mart, bureau, START + dt.timedelta(days=start),
                           START + dt.timedelta(days=119), history_days=history)  # fmt: skip
    return BuiltMatrix(bureau, ctx.matrix, ctx.customers)


def test_checks_on_a_built_matrix_find_the_same_hits(generated: tuple[Path, str]) -> None:
    root, bureau = generated
    with Mart(root) as mart:
        own = run_checks(mart, bureau, CHECKS)
        built = context_matrix(mart, bureau, history=60)
        assert covering(mart, bureau, built) is not None
        reused = run_checks(mart, bureau, CHECKS, built=built)
    counts = own["check"].value_counts()
    assert counts["missing_readings"] > 10 and counts["duplicate_readings"] > 3
    orphan_readings = own[(own.check == "orphans") & own.detail.str.startswith("readings")]
    assert len(orphan_readings) > 0 and counts["negative_readings"] > 3
    assert (own.entity.str.startswith("9") & (own.check == "duplicate_readings")).sum() == 0
    pd.testing.assert_frame_equal(reused, own)


def test_a_matrix_that_misses_readings_is_not_used(generated: tuple[Path, str]) -> None:
    root, bureau = generated
    with Mart(root) as mart:
        built = context_matrix(mart, bureau, history=60)
        short = context_matrix(mart, bureau, history=0, start=61)  # from 2 March on
        assert short.matrix.ledger is not None and short.matrix.ledger.outside > 0
        assert covering(mart, bureau, short) is None
        assert covering(mart, "other", built) is None
        end = START + dt.timedelta(days=119)
        few = built.customers[:100]
        part = BuiltMatrix(bureau, build_matrix(mart, bureau, START, end, few.cons_no), few)
        assert part.matrix.ledger is not None and part.matrix.ledger.unwanted > 0
        assert covering(mart, bureau, part) is None
        no_ledger = replace(built, matrix=build_matrix(mart, bureau, START, end, method="duckdb"))
        assert covering(mart, bureau, no_ledger) is None
        pd.testing.assert_frame_equal(
            run_checks(mart, bureau, CHECKS, built=short), run_checks(mart, bureau, CHECKS)
        )


def test_compiled_missing_runs_equal_the_numpy_runs() -> None:
    from audit_lib.data.gaps import missing_runs
    from audit_lib.data.quality_matrix import _missing_runs

    rng = np.random.default_rng(2)
    values = rng.random((300, 60), dtype=np.float32)
    values[rng.random(values.shape) < 0.4] = np.nan
    values[:10] = np.nan  # whole rows missing
    first = rng.integers(-5, 70, 300)
    last = rng.integers(-5, 70, 300)
    for min_days in (1, 3, 7):
        want = missing_runs(values, first, last, min_days)
        got = _missing_runs(values, first, last, min_days)
        for a, b in zip(want, got, strict=True):
            np.testing.assert_array_equal(a, b)
    assert len(want[0]) > 0  # min_days 7: still some runs (the whole-row gaps)


def test_orphan_readings_from_the_ledger_equal_the_anti_join(tmp_path: Path) -> None:
    """Strays that are not orphans (another bureau's customer, no date), orphans without
    a ``cons_no`` and negative readings among orphans and repeated cells give the same hits
    from the matrix and its ledger as from every reading."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    generate_demo(tmp_path, DemoConfig(bureaus=2, customers=400, days=60, start=START, seed=5))
    root = tmp_path / "mart"
    with Mart(root) as mart:
        bureau, other = mart.bureau_codes()[:2]
        theirs = str(mart.customers(other)["cons_no"].iloc[0])
        mine = str(mart.customers(bureau)["cons_no"].iloc[0])
    month = root / "readings" / f"bureau={bureau}" / "month=2025-02"
    kwh_type = pq.read_schema(sorted(month.glob("*.parquet"))[0]).field("kwh").type
    day = dt.date(2025, 2, 3)
    extra = pa.table(
        {
            "cons_no": [theirs, None, None, "X-ORPHAN", "X-ORPHAN", mine, mine, mine, mine],
            "date": pa.array(
                [day, day, dt.date(2025, 2, 9), day, dt.date(2025, 2, 5), None, day, day, day]
            ),
            "kwh": pa.array([1.0, -2.0, 3.0, -4.0, 5.0, 6.0, -1.5, -2.5, 0.5], kwh_type),
        }
    )
    pq.write_table(extra, month / "zz-extra.parquet")
    record_manifest(root)  # a file added on purpose: the manifest says so
    with Mart(root) as mart:
        own = run_checks(mart, bureau, ["orphans", "negative_readings"])
        built = context_matrix(mart, bureau, history=59, start=59)
        covered = covering(mart, bureau, built)
        assert covered is not None and negative_readings(covered, bureau) is not None
        reused = run_checks(mart, bureau, ["orphans", "negative_readings"], built=built)
    readings = own[own.detail.str.startswith("readings")]
    assert "X-ORPHAN" in set(readings.entity) and theirs not in set(readings.entity)
    assert readings.entity.isna().any()
    negative = own[own.check == "negative_readings"]
    assert (negative.entity == mine).sum() >= 2 and negative.entity.isna().any()
    pd.testing.assert_frame_equal(reused, own)
