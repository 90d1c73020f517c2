"""Billing facts the themes and the indicators share (电费账务).

A bill falls due on the 15th of the month after its billing month, unless a payment row says
otherwise: the arrears theme counts overdue days from it, the collection rate counts only the
bills already due.
"""

from __future__ import annotations

DUE_DATE_SQL = (
    "CAST(date_trunc('month', CAST({month} || '-01' AS DATE)) "
    "+ INTERVAL 1 MONTH + INTERVAL 14 DAY AS DATE)"
)
"""DuckDB expression of a bill's due date; ``{month}`` is the ``YYYY-MM`` column or value."""

BILL_SCOPE = "b.bureau = ? AND b.month IN (SELECT unnest(?::VARCHAR[]))"
"""DuckDB filter of the bills ``b`` of one bureau (first parameter) in a list of ``YYYY-MM``
months (second parameter): only those partitions are read."""
