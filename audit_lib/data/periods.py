"""Periods and days: the one parser of ``2025-01..2025-12`` and the date helpers beside it.

Every command, notebook and app that takes a period reads it here, so the same text means the
same days everywhere and a bad one is refused with the same message.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from audit_lib.errors import DataError

DateLike = str | dt.date | pd.Timestamp


def to_date(value: DateLike, *, name: str = "date") -> dt.date:
    """Parse ``value`` (``YYYY-MM-DD`` string, date or Timestamp) into a :class:`datetime.date`.

    Raises
    ------
    DataError
        If the value is not a date; the message names the argument.
    """
    try:
        return pd.Timestamp(value).date()
    except (ValueError, TypeError) as exc:
        raise DataError(f"not a date: {value!r}", field=name) from exc


def months_between(start: dt.date, end: dt.date) -> list[str]:
    """The ``YYYY-MM`` months from ``start`` to ``end`` inclusive."""
    if end < start:
        raise DataError(f"end {end} is before start {start}", field="end")
    periods = pd.period_range(start, end, freq="M")
    return [str(p) for p in periods]


def parse_period(period: str) -> tuple[dt.date, dt.date]:
    """Parse ``2025-01..2025-12`` (months) or ``2025-01-01..2025-03-31`` (days).

    A single month ``2025-03`` (or day) means that month (or day); the two ends may mix a month
    and a day, and blanks around them are ignored.

    Raises
    ------
    DataError
        If the text is not a period or ends before it starts, naming the field ``period``.
    """
    parts = [p.strip() for p in str(period).split("..")]
    if len(parts) not in (1, 2) or not all(parts):
        raise DataError(f"not a period: {period!r} (expected 2025-01..2025-12)", field="period")
    first, last = parts[0], parts[-1]
    try:
        start = pd.Period(first, freq="M").start_time if len(first) == 7 else pd.Timestamp(first)
        end = pd.Period(last, freq="M").end_time if len(last) == 7 else pd.Timestamp(last)
    except (ValueError, TypeError) as exc:
        raise DataError(f"not a period: {period!r} (expected 2025-01..2025-12)",
                        field="period") from exc  # fmt: skip
    if end < start:
        raise DataError(f"period ends before it starts: {period!r}", field="period")
    return start.date(), end.date()
