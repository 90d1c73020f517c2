"""The one period parser every command, notebook and app uses."""

from __future__ import annotations

import datetime as dt

import pytest

from audit_lib.data.periods import months_between, parse_period, to_date
from audit_lib.errors import DataError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01..2025-03", (dt.date(2025, 1, 1), dt.date(2025, 3, 31))),
        ("2024-02", (dt.date(2024, 2, 1), dt.date(2024, 2, 29))),
        ("2024-02..2024-03", (dt.date(2024, 2, 1), dt.date(2024, 3, 31))),
        ("2025-01-05..2025-02-10", (dt.date(2025, 1, 5), dt.date(2025, 2, 10))),
        ("2025-01-05..2025-02", (dt.date(2025, 1, 5), dt.date(2025, 2, 28))),
        (" 2025-01 .. 2025-02 ", (dt.date(2025, 1, 1), dt.date(2025, 2, 28))),
        ("2025-03-07", (dt.date(2025, 3, 7), dt.date(2025, 3, 7))),
    ],
)
def test_parse_period_months_days_and_mixed(text: str, expected: tuple[dt.date, dt.date]) -> None:
    assert parse_period(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("last spring", "not a period"),
        ("2024-13", "not a period"),
        ("2025-01..", "not a period"),
        ("2025-01..2025-02..2025-03", "not a period"),
        ("2025-03..2025-01", "ends before it starts"),
    ],
)
def test_parse_period_refuses_with_the_field_named(text: str, message: str) -> None:
    with pytest.raises(DataError, match=message) as err:
        parse_period(text)
    assert "period" in str(err.value)


def test_dates_and_months_between() -> None:
    assert to_date("2025-02-03") == dt.date(2025, 2, 3)
    with pytest.raises(DataError, match="not a date"):
        to_date("someday", name="start")
    assert months_between(dt.date(2024, 12, 30), dt.date(2025, 2, 1)) == [
        "2024-12",
        "2025-01",
        "2025-02",
    ]
    with pytest.raises(DataError, match="before start"):
        months_between(dt.date(2025, 2, 1), dt.date(2025, 1, 1))
