"""``arrow_frame`` gives the DataFrame DuckDB's own ``.df()`` gives, column for column."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pandas as pd
import pytest

from audit_lib.data.access import arrow_frame

TABLE = """CREATE TABLE t AS SELECT
    range::INTEGER AS i, range * 1.5 AS d, range % 2 = 0 AS b,
    CASE WHEN range % 3 = 0 THEN NULL ELSE range END AS ni,
    CASE WHEN range % 3 = 0 THEN NULL ELSE range % 2 = 0 END AS nb,
    CASE WHEN range % 2 = 0 THEN NULL ELSE '台区' || range END AS s,
    DATE '2025-01-01' + range::INTEGER AS dt,
    CASE WHEN range = 1 THEN NULL ELSE DATE '2025-03-01' END AS ndt,
    TIMESTAMP '2025-01-01 00:00' + range * INTERVAL 1 HOUR AS ts,
    (range * 0.25)::DECIMAL(10, 2) AS dec, range::FLOAT AS f, range::SMALLINT AS si,
    range::UBIGINT AS ub
    FROM range(7)"""

QUERIES = [
    "SELECT * FROM t",
    "SELECT * FROM t WHERE ni IS NOT NULL",  # no null left in the nullable columns
    "SELECT sum(i), avg(i), count(*), sum(dec), max(dec), min(ts), min(dt), any_value(nb),"
    " sum(ni), sum(f), sum(si), max(ub) FROM t",
    "SELECT b, sum(dec) AS money, count(*) AS n FROM t GROUP BY b ORDER BY b",
    "SELECT i, list(i) OVER () AS l FROM t",  # a list column: DuckDB's own conversion
    "SELECT INTERVAL 1 DAY AS v",
    "SELECT NULL AS v",
    "SELECT * EXCLUDE (s) FROM t WHERE i > 100",  # empty result
]


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute(TABLE)
    yield connection
    connection.close()


@pytest.mark.parametrize("query", QUERIES)
def test_arrow_frame_equals_duckdb_df(con: duckdb.DuckDBPyConnection, query: str) -> None:
    expected = con.execute(query).df()
    got = arrow_frame(con.sql(query).to_arrow_table())
    pd.testing.assert_frame_equal(got, expected)


def test_arrow_frame_keeps_nulls_and_strings(con: duckdb.DuckDBPyConnection) -> None:
    got = arrow_frame(con.sql("SELECT ni, nb, s, ndt FROM t ORDER BY i").to_arrow_table())
    assert str(got["ni"].dtype) == "Int64" and got["ni"].isna().sum() == 3
    assert str(got["nb"].dtype) == "boolean" and got["nb"].isna().sum() == 3
    assert pd.isna(got["s"].iloc[0]) and got["s"].iloc[1] == "台区1"
    assert got["ndt"].isna().sum() == 1 and str(got["ndt"].dtype) == "datetime64[us]"


def test_empty_string_column_keeps_the_string_dtype(con: duckdb.DuckDBPyConnection) -> None:
    # the one deliberate difference: .df() gives object for an empty string column
    got = arrow_frame(con.sql("SELECT s FROM t WHERE i > 100").to_arrow_table())
    assert got.empty and got["s"].dtype == pd.StringDtype(na_value=float("nan"))
