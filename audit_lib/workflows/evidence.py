"""What a task's evidence chart shows (稽查证据): one customer's daily kWh around the period,
the band of their peers (same station area and class, 10th–90th percentile), their area's
daily line loss, their meter alarms and the detected change point
(:func:`audit_lib.detect.scoring.evidence.explain`). Four DuckDB queries over the mart.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

from audit_lib.data.access import Mart
from audit_lib.errors import AuditError

log = logging.getLogger(__name__)
HISTORY_DAYS = 180


@dataclass(frozen=True)
class Evidence:
    """What the chart shows for one customer and period."""

    kwh: pd.DataFrame  # date, kwh
    peers: pd.DataFrame  # date, p10, p90
    loss: pd.DataFrame  # date, loss_pct
    events: pd.DataFrame  # time, code
    change: dict[str, Any] | None
    period: tuple[dt.date, dt.date]


def _window(alias: str) -> str:
    """Partition and date condition on table ``alias`` (parameters: bureau, months, dates)."""
    return (
        f"{alias}.bureau = ? AND {alias}.month IN (SELECT unnest(?::VARCHAR[])) "
        f"AND {alias}.date BETWEEN ? AND ?"
    )


def load_evidence(mart: Mart, cons_no: str, bureau: str, start: dt.date, end: dt.date) -> Evidence:
    """Read the customer's readings, peers' band, area loss and events around a period."""
    first = start - dt.timedelta(days=HISTORY_DAYS)
    months = [str(p) for p in pd.period_range(first, end, freq="M")]
    args = [bureau, months, first, end]
    in_window = _window("readings")
    kwh = mart.sql(
        f"SELECT date, kwh FROM readings WHERE {in_window} AND cons_no = ? ORDER BY date",
        [*args, cons_no],
    )
    me = mart.sql(
        "SELECT area_id, cust_class FROM customers WHERE bureau = ? AND cons_no = ? LIMIT 1",
        [bureau, cons_no],
    )
    peers = pd.DataFrame(columns=["date", "p10", "p90"])
    loss = pd.DataFrame(columns=["date", "loss_pct"])
    if len(me):
        area, cls = str(me["area_id"].iat[0]), str(me["cust_class"].iat[0])
        peers = mart.sql(
            f"""
            SELECT r.date, quantile_cont(r.kwh, 0.1) AS p10, quantile_cont(r.kwh, 0.9) AS p90
            FROM readings r JOIN (SELECT cons_no FROM customers
                                  WHERE bureau = ? AND area_id = ? AND cust_class = ?) c
                 USING (cons_no)
            WHERE {_window("r")} AND r.cons_no <> ?
            GROUP BY r.date ORDER BY r.date
            """,
            [bureau, area, cls, *args, cons_no],
        )
        loss = mart.sql(
            f"""
            WITH used AS (
                SELECT r.date, sum(r.kwh) AS kwh FROM readings r
                JOIN (SELECT cons_no FROM customers WHERE bureau = ? AND area_id = ?) c
                     USING (cons_no)
                WHERE {_window("r")}
                GROUP BY r.date)
            SELECT s.date, 100 * (s.supply_kwh - u.kwh) / s.supply_kwh AS loss_pct
            FROM area_supply s JOIN used u USING (date)
            WHERE s.area_id = ? AND {_window("s")} AND s.supply_kwh > 0
            ORDER BY s.date
            """,
            [bureau, area, *args, area, *args],
        )
    events = mart.sql(
        "SELECT time, code FROM meter_events WHERE bureau = ? AND month IN "
        "(SELECT unnest(?::VARCHAR[])) AND cons_no = ? ORDER BY time",
        [bureau, months, cons_no],
    )
    change = None
    from audit_lib.detect.scoring.evidence import explain

    if len(kwh):
        try:
            change = explain(kwh.set_index("date")["kwh"])
        except AuditError as exc:
            log.info("no change point for %s: %s", cons_no, exc)
    return Evidence(kwh, peers, loss, events, change, (start, end))
