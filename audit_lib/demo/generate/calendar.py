"""Calendar facts of the period: days, months, day types and Chinese holidays."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

WORKDAY, SATURDAY, HOLIDAY = 0, 1, 2  # BDEW day types WT / SA / FT (Sunday or holiday)

# Spring Festival (春节, lunar new year's day), public sources.
SPRING_FESTIVAL = {
    1999: "1999-02-16", 2000: "2000-02-05", 2001: "2001-01-24", 2002: "2002-02-12",
    2003: "2003-02-01", 2004: "2004-01-22", 2005: "2005-02-09", 2006: "2006-01-29",
    2007: "2007-02-18", 2008: "2008-02-07", 2009: "2009-01-26", 2010: "2010-02-14",
    2011: "2011-02-03", 2012: "2012-01-23", 2013: "2013-02-10", 2014: "2014-01-31",
    2015: "2015-02-19", 2016: "2016-02-08", 2017: "2017-01-28", 2018: "2018-02-16",
    2019: "2019-02-05", 2020: "2020-01-25", 2021: "2021-02-12", 2022: "2022-02-01",
    2023: "2023-01-22", 2024: "2024-02-10", 2025: "2025-01-29", 2026: "2026-02-17",
    2027: "2027-02-06", 2028: "2028-01-26", 2029: "2029-02-13", 2030: "2030-02-03",
    2031: "2031-01-23", 2032: "2032-02-11", 2033: "2033-01-31", 2034: "2034-02-19",
    2035: "2035-02-08",
}  # fmt: skip

# Fixed-date public holidays (month, first day, last day): New Year, Labour Day, National Day.
FIXED_HOLIDAYS = ((1, 1, 1), (5, 1, 5), (10, 1, 7))


@dataclass(frozen=True)
class Calendar:
    """The days of the period and what kind of day each is.

    Attributes
    ----------
    dates
        ``datetime64[D]`` array, one per day.
    day_type
        int8 per day: ``WORKDAY``, ``SATURDAY`` or ``HOLIDAY`` (Sunday or public holiday).
    festival_offset
        int32 per day: days since the nearest Spring Festival (negative before it).
    month_labels
        ``YYYY-MM`` of each calendar month touched by the period.
    month_starts
        Index of the first day of each month within the period.
    month_of_day
        int32 per day: index into ``month_labels``.
    """

    dates: np.ndarray
    day_type: np.ndarray
    festival_offset: np.ndarray
    month_labels: list[str]
    month_starts: np.ndarray
    month_of_day: np.ndarray

    @property
    def days(self) -> int:
        """Number of days."""
        return len(self.dates)

    def month_slice(self, m: int) -> slice:
        """Day indices of month ``m``."""
        stop = self.month_starts[m + 1] if m + 1 < len(self.month_starts) else self.days
        return slice(int(self.month_starts[m]), int(stop))


def build_calendar(start: dt.date, days: int) -> Calendar:
    """Build the calendar of ``days`` days from ``start``."""
    dates = np.datetime64(start, "D") + np.arange(days)
    months = dates.astype("datetime64[M]")
    uniq, starts, month_of_day = np.unique(months, return_index=True, return_inverse=True)
    weekday = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    day_type = np.where(weekday == 5, SATURDAY, np.where(weekday == 6, HOLIDAY, WORKDAY))
    month_no = months.astype(np.int64) % 12 + 1
    day_no = (dates - months.astype("datetime64[D]")).astype(np.int64) + 1
    for month, first, last in FIXED_HOLIDAYS:
        day_type[(month_no == month) & (day_no >= first) & (day_no <= last)] = HOLIDAY
    offset = festival_offsets(dates)
    day_type[(offset >= 0) & (offset <= 6)] = HOLIDAY  # the official week off
    return Calendar(
        dates=dates,
        day_type=day_type.astype(np.int8),
        festival_offset=offset,
        month_labels=[str(m) for m in uniq],
        month_starts=starts.astype(np.int64),
        month_of_day=month_of_day.astype(np.int32),
    )


def festival_offsets(dates: np.ndarray) -> np.ndarray:
    """Days from each date to the nearest Spring Festival (negative = before it)."""
    festivals = np.array(sorted(SPRING_FESTIVAL.values()), dtype="datetime64[D]")
    pos = np.clip(np.searchsorted(festivals, dates), 1, len(festivals) - 1)
    before = (dates - festivals[pos - 1]).astype(np.int64)
    after = (dates - festivals[pos]).astype(np.int64)
    return np.where(np.abs(before) <= np.abs(after), before, after).astype(np.int32)
