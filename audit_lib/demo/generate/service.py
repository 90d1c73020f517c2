"""95598 customer-service tickets and the collection terminals' meter events.

Background rates are realistic and low; injected faults add their own corroborating events
(cover opened near a theft's start, meter stopped, register backwards) through
:class:`EventLog`, and repeated complaints are labelled in the truth table.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from audit_lib.demo.generate.calendar import Calendar
from audit_lib.demo.generate.org import Org, digits
from audit_lib.demo.generate.truth import TruthLog
from audit_lib.data.schema import METER_EVENTS, TICKETS

TICKETS_PER_CUSTOMER_YEAR = 0.03
BACKGROUND_KINDS = ("enquiry", "fault", "complaint", "opinion", "theft_report")
BACKGROUND_P = (0.42, 0.3, 0.1, 0.1, 0.08)
TOPICS = {
    "enquiry": ("billing", "tariff", "account"),
    "fault": ("outage", "voltage"),
    "complaint": ("billing", "voltage", "outage", "service", "metering"),
    "opinion": ("service",),
    "theft_report": ("theft",),
}


class EventLog:
    """Meter events collected while the data are generated: (customer row, day, code)."""

    def __init__(self) -> None:
        self._rows: list[np.ndarray] = []
        self._days: list[np.ndarray] = []
        self._codes: list[np.ndarray] = []

    def add(self, rows: np.ndarray, days: np.ndarray, code: str) -> None:
        """Record one ``code`` event for each customer row on the matching day."""
        self._rows.append(np.asarray(rows, dtype=np.int64))
        self._days.append(np.asarray(days, dtype=np.int64))
        self._codes.append(np.full(len(rows), code, dtype=object))

    def add_background(self, rng: np.random.Generator, n: int, days: int, cls: np.ndarray) -> None:
        """Everyday alarms: imbalance on three-phase customers, rare over-tolerance/fast."""
        for code, share, who in (
            ("ERC17", 0.01, cls != 0),
            ("ERC28", 0.0005, np.ones(n, dtype=bool)),
            ("ERC29", 0.0003, np.ones(n, dtype=bool)),
        ):
            rows = np.flatnonzero(who & (rng.random(n) < share))
            self.add(rows, rng.integers(0, days, len(rows)), code)

    def table(
        self,
        rng: np.random.Generator,
        cal: Calendar,
        cons_no: np.ndarray,
        replace_day: np.ndarray,
        bureau: str,
        bureau_index: int,
    ) -> pa.Table:
        """The meter_events rows, sorted by customer and time."""
        rows = np.concatenate([np.zeros(0, np.int64), *self._rows])
        days = np.clip(np.concatenate([np.zeros(0, np.int64), *self._days]), 0, cal.days - 1)
        codes = np.concatenate([np.zeros(0, object), *self._codes])
        secs = rng.integers(0, 86_400, len(rows))
        order = np.lexsort((secs, days, rows))
        rows, days, codes, secs = rows[order], days[order], codes[order], secs[order]
        new_meter = (replace_day[rows] >= 0) & (days >= replace_day[rows])
        cons = cons_no[rows]
        meter = np.where(new_meter, "M" + cons.astype(str) + "02", "M" + cons.astype(str) + "01")
        times = cal.dates[days].astype("datetime64[s]") + secs.astype("timedelta64[s]")
        data = {
            "event_id": digits(f"E{bureau_index + 1:02d}", np.arange(len(rows)), 9),
            "cons_no": pa.array(cons, type=pa.string()),
            "meter_id": pa.array(meter.astype(object), type=pa.string()),
            "time": pa.array(times, type=pa.timestamp("s")),
            "code": pa.array(codes, type=pa.string()),
            "bureau": pa.array(np.full(len(rows), bureau, dtype=object), type=pa.string()),
            "month": _months(cal, days),
        }
        return pa.table(data, schema=METER_EVENTS.arrow_schema())


def _months(cal: Calendar, days: np.ndarray) -> pa.Array:
    labels = np.array(cal.month_labels, dtype=object)
    return pa.array(labels[cal.month_of_day[days]], type=pa.string())


def build_tickets(
    rng: np.random.Generator,
    cal: Calendar,
    org: Org,
    cons_no: np.ndarray,
    active: tuple[np.ndarray, np.ndarray],
    truth: TruthLog,
    theft_rows: np.ndarray,
    theft_start: np.ndarray,
    bureau: str,
    bureau_index: int,
) -> pa.Table:
    """95598 tickets: background, repeated complaints (labelled), theft reports."""
    n, d = len(cons_no), cal.days
    open_day, close_day = active
    years = d / 365.0
    k = min(n, int(rng.binomial(n, min(1.0, TICKETS_PER_CUSTOMER_YEAR * years))))
    rows = rng.choice(n, size=k, replace=False)
    lo, hi = np.maximum(open_day[rows], 0), np.minimum(close_day[rows], d)
    day = lo + (rng.random(k) * np.maximum(hi - lo, 1)).astype(np.int64)
    kind = np.array(BACKGROUND_KINDS, dtype=object)[rng.choice(5, size=k, p=BACKGROUND_P)]

    rep = truth.pick(rng, "repeated_complaints", (open_day <= 0) & (close_day >= d))
    count = rng.integers(3, 7, len(rep))
    span = np.minimum(rng.integers(20, 61, len(rep)), d)
    first = rng.integers(0, np.maximum(d - span, 1))
    rep_rows = np.repeat(rep, count)
    offsets = (rng.random(len(rep_rows)) * np.repeat(span, count)).astype(np.int64)
    offsets[np.cumsum(count) - count] = 0  # the first complaint opens the window
    rep_day = np.minimum(np.repeat(first, count) + offsets, d - 1)
    last = np.zeros(len(rep), dtype=np.int64)
    np.maximum.at(last, np.searchsorted(rep, rep_rows), rep_day)
    truth.add(
        "repeated_complaints", rep, first, last, np.minimum(1.0, count / 6.0), count.astype(str)
    )

    reported = rng.random(len(theft_rows)) < 0.1
    rep_theft = theft_rows[reported]
    theft_day = np.minimum(theft_start[reported] + rng.integers(5, 60, len(rep_theft)), d - 1)

    outage_areas = rng.choice(org.n_areas, size=max(1, org.n_areas // 20), replace=False)
    outage_day = rng.integers(0, d, len(outage_areas))

    all_rows = np.concatenate([rows, rep_rows, rep_theft, np.full(len(outage_areas), -1)])
    all_day = np.concatenate([day, rep_day, theft_day, outage_day])
    all_kind = np.concatenate(
        [
            kind,
            np.full(len(rep_rows), "complaint", dtype=object),
            np.full(len(rep_theft), "theft_report", dtype=object),
            np.full(len(outage_areas), "fault", dtype=object),
        ]
    )
    topic_rep = np.array(TOPICS["complaint"], dtype=object)[rng.integers(0, 5, len(rep))]
    topic = _topics(rng, kind)
    all_topic = np.concatenate(
        [
            topic,
            np.repeat(topic_rep, count),
            np.full(len(rep_theft), "theft", dtype=object),
            np.full(len(outage_areas), "outage", dtype=object),
        ]
    )
    area_of_row = np.where(all_rows >= 0, org.area_of[np.maximum(all_rows, 0)], -1)
    area_of_row[len(all_rows) - len(outage_areas) :] = outage_areas
    order = np.lexsort((all_rows, all_day))
    return _ticket_table(
        rng, cal, cons_no, bureau, bureau_index,
        all_rows[order], all_day[order], all_kind[order], all_topic[order], area_of_row[order],
    )  # fmt: skip


def _topics(rng: np.random.Generator, kind: np.ndarray) -> np.ndarray:
    out = np.empty(len(kind), dtype=object)
    for name, topics in TOPICS.items():  # five kinds, not customers
        sel = np.flatnonzero(kind == name)
        out[sel] = np.array(topics, dtype=object)[rng.integers(0, len(topics), len(sel))]
    return out


def _ticket_table(
    rng: np.random.Generator,
    cal: Calendar,
    cons_no: np.ndarray,
    bureau: str,
    bureau_index: int,
    rows: np.ndarray,
    day: np.ndarray,
    kind: np.ndarray,
    topic: np.ndarray,
    area: np.ndarray,
) -> pa.Table:
    k = len(rows)
    opened = cal.dates[day].astype("datetime64[s]") + rng.integers(8 * 3600, 22 * 3600, k).astype(
        "timedelta64[s]"
    )
    hours = rng.lognormal(np.log(20.0), 0.9, k)
    closed = opened + (hours * 3600).astype(np.int64).astype("timedelta64[s]")
    end = (cal.dates[-1] + 1).astype("datetime64[s]")
    area_ids = digits(f"{bureau}T", np.maximum(area, 0), 6).to_numpy(zero_copy_only=False)
    data = {
        "ticket_id": digits(f"T{bureau_index + 1:02d}", np.arange(k), 8),
        "cons_no": pa.array(np.where(rows >= 0, cons_no[np.maximum(rows, 0)], None), pa.string()),
        "area_id": pa.array(area_ids, type=pa.string()),
        "kind": pa.array(kind, type=pa.string()),
        "opened": pa.array(opened, type=pa.timestamp("s")),
        "closed": pa.array(closed, type=pa.timestamp("s"), mask=closed >= end),
        "topic": pa.array(topic, type=pa.string()),
        "bureau": pa.array(np.full(k, bureau, dtype=object), type=pa.string()),
        "month": _months(cal, day),
    }
    return pa.table(data, schema=TICKETS.arrow_schema())
