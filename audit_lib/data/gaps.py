"""Runs of days without readings (读数缺失), found on the customers × days matrix.

A window function over every reading (sort by customer and day) is slow and memory-hungry
for a bureau of a million customers; the matrix form finds the same runs with a few
vectorised passes: a day is *missing* when the account was open and no non-null reading
exists, and each maximal run of missing days of at least ``min_days`` is one hit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit_lib.data.access import Mart
from audit_lib.data.matrix import build_matrix
from audit_lib.data.schema import CONS_NO

RUN_COLUMNS = ["entity", "start", "end", "days"]


def missing_runs(
    values: np.ndarray, first_day: np.ndarray, last_day: np.ndarray, min_days: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximal runs of missing days in each row of a customers × days matrix.

    Parameters
    ----------
    values
        float32 customers × days, NaN = no reading.
    first_day, last_day
        Per row, the first and last column where a reading is expected (inclusive).
    min_days
        Shortest run reported.

    Returns
    -------
    rows, starts, lengths : ndarray
        One entry per run, in row-major order.
    """
    n, d = values.shape
    cols = np.arange(d)
    missing = np.isnan(values)
    missing &= cols[None, :] >= first_day[:, None]
    missing &= cols[None, :] <= last_day[:, None]
    padded = np.zeros((n, d + 2), dtype=np.int8)
    padded[:, 1:-1] = missing
    del missing
    edges = np.diff(padded, axis=1)
    del padded
    start_rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)
    lengths = ends - starts
    keep = lengths >= min_days
    return start_rows[keep], starts[keep], lengths[keep]


def customer_gaps(mart: Mart, bureau: str, min_days: int) -> pd.DataFrame:
    """Runs of at least ``min_days`` days without a reading for the customers of one bureau.

    Days are expected from a customer's open date to the day before its close date, within
    the span of days the bureau's readings cover.

    Returns
    -------
    DataFrame
        Columns ``entity, start, end, days``.
    """
    span = mart.sql(
        "SELECT min(date) AS d0, max(date) AS d1 FROM readings WHERE bureau = ?", [bureau]
    )
    if span.empty or pd.isna(span.d0.iloc[0]):
        return pd.DataFrame(columns=RUN_COLUMNS)
    d0, d1 = pd.Timestamp(span.d0.iloc[0]), pd.Timestamp(span.d1.iloc[0])
    customers = mart.customers(bureau)
    matrix = build_matrix(mart, bureau, d0, d1, customers[CONS_NO])
    return matrix_gaps(matrix.values, matrix.cons_no, customers, d0, d1, min_days)


def matrix_gaps(
    values: np.ndarray,
    cons_no: np.ndarray,
    customers: pd.DataFrame,
    d0: pd.Timestamp,
    d1: pd.Timestamp,
    min_days: int,
) -> pd.DataFrame:
    """:func:`customer_gaps` on a matrix already built: ``values`` covers the days ``d0`` to
    ``d1``, one row per row of ``customers`` (``open_date``, ``close_date``), keys ``cons_no``.
    """
    opened = pd.to_datetime(customers["open_date"])
    closed = pd.to_datetime(customers["close_date"])
    first = ((opened - d0).dt.days).clip(lower=0).fillna(0).to_numpy(np.int64)
    last_open = (closed - pd.Timedelta(days=1)).fillna(d1)
    last = ((last_open - d0).dt.days).clip(upper=(d1 - d0).days).to_numpy(np.int64)
    rows, starts, lengths = missing_runs(values, first, last, min_days)
    start = pd.date_range(d0, d1, freq="D")[starts]
    return pd.DataFrame(
        {
            "entity": cons_no[rows],
            "start": start,
            "end": start + pd.to_timedelta(lengths - 1, unit="D"),
            "days": lengths,
        }
    )
