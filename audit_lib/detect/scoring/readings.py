"""Long-format daily readings → customers × days matrix, with the input checked on the way.

The check is the contract of ``audit score``: columns ``cons_no`` (string), ``date``
(date), ``kwh`` (float, NaN = missing). Every problem raises
:class:`~audit_lib.errors.DataError` naming the file, the field and, where it helps, the row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit_lib.data.schema import CONS_NO, DATE, KWH
from audit_lib.errors import DataError, SchemaError

REQUIRED = (CONS_NO, DATE, KWH)


def check_readings(readings: pd.DataFrame, *, source: str) -> pd.DataFrame:
    """Validate and normalise the three columns; return a frame of exactly them."""
    if len(readings) == 0:
        raise DataError("no readings (empty input)", file=source)
    for col in REQUIRED:
        if col not in readings.columns:
            raise SchemaError(f"missing column {col!r}; need {', '.join(REQUIRED)}",
                              file=source, field=col)  # fmt: skip
    cons = readings[CONS_NO]
    if not (pd.api.types.is_string_dtype(cons) or pd.api.types.is_object_dtype(cons)):
        raise SchemaError(f"{CONS_NO} must be a string, got {cons.dtype}", file=source,
                          field=CONS_NO)  # fmt: skip
    bad = cons.isna() | ~cons.map(lambda v: isinstance(v, str)).astype(bool)
    if bad.any():
        raise DataError(f"{CONS_NO} must be a non-empty string", file=source, field=CONS_NO,
                        row=int(np.flatnonzero(bad.to_numpy())[0]))  # fmt: skip
    kwh = readings[KWH]
    if not pd.api.types.is_numeric_dtype(kwh) or pd.api.types.is_bool_dtype(kwh):
        raise SchemaError(f"{KWH} must be a number, got {kwh.dtype}", file=source, field=KWH)
    dates = readings[DATE]
    if pd.api.types.is_datetime64_any_dtype(dates):
        parsed = dates
    elif pd.api.types.is_numeric_dtype(dates) or pd.api.types.is_bool_dtype(dates):
        raise SchemaError(f"{DATE} must be a date, got {dates.dtype}", file=source, field=DATE)
    else:
        parsed = pd.to_datetime(dates, errors="coerce", format="mixed")
    if parsed.isna().any():
        row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise DataError(f"{DATE} is missing or not a date: {dates.iloc[row]!r}", file=source,
                        field=DATE, row=row)  # fmt: skip
    out = pd.DataFrame({
        CONS_NO: cons.to_numpy(dtype=object),
        DATE: pd.DatetimeIndex(parsed).tz_localize(None).normalize(),
        KWH: kwh.to_numpy(dtype=np.float64),
    })  # fmt: skip
    dup = out.duplicated([CONS_NO, DATE])
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(f"two readings for customer {out[CONS_NO].iloc[row]} on "
                        f"{out[DATE].iloc[row].date()}", file=source, field=DATE, row=row)  # fmt: skip
    return out


def readings_matrix(
    readings: pd.DataFrame, *, source: str = "<frame>"
) -> tuple[np.ndarray, np.ndarray, pd.DatetimeIndex]:
    """Pivot checked readings to ``(values, cons_nos, dates)`` without a loop over customers.

    ``values`` is customers × days float32 over every calendar day from the first to the
    last reading; days without a reading are NaN.
    """
    frame = check_readings(readings, source=source)
    codes, keys = pd.factorize(frame[CONS_NO], sort=True)
    start = frame[DATE].min()
    dates = pd.date_range(start, frame[DATE].max(), freq="D")
    day = ((frame[DATE] - start) // pd.Timedelta(days=1)).to_numpy(dtype=np.int64)
    values = np.full((len(keys), len(dates)), np.nan, dtype=np.float32)
    values[codes, day] = frame[KWH].to_numpy(dtype=np.float32)
    return values, np.asarray(keys, dtype=object), dates
