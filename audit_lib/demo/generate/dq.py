"""Data-quality faults (数据质量) in what the collection system delivers.

Applied to the metered matrix once bills are made (bills come from register reads, not from
daily AMI values), turning it into the AMI readings: missing runs, negative values, duplicated
rows, orphan customers (rows whose cons_no is not in customers), codes outside code lists, and
gaps in station-area supply. Background collection failures (isolated single days, ~0.1 %) are
part of normal operation and are not labelled; runs of 3 days or more are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from audit_lib.demo.generate.config import (
    AREA_SUPPLY_GAP_RATE,
    BACKGROUND_MISSING_RATE,
    DEFAULT_RATES,
)
from audit_lib.demo.generate.lifecycle import Lifecycle
from audit_lib.demo.generate.org import digits
from audit_lib.demo.generate.service import EventLog
from audit_lib.demo.generate.truth import TruthLog, draw_windows, expand_windows, window_mask

BAD_CODES = (  # (table, column, value outside the column's code list)
    ("customers", "cust_class", "居民"),
    ("customers", "status", "normal"),
    ("customers", "cust_class", "resident"),
    ("meter_events", "code", "ERC99"),
)


@dataclass
class ExtraReadings:
    """Reading rows outside the matrix: duplicates and orphans."""

    cons_no: list[np.ndarray] = field(default_factory=list)
    day: list[np.ndarray] = field(default_factory=list)
    kwh: list[np.ndarray] = field(default_factory=list)

    def add(self, cons_no: np.ndarray, day: np.ndarray, kwh: np.ndarray) -> None:
        """Append rows."""
        self.cons_no.append(np.asarray(cons_no, dtype=object))
        self.day.append(np.asarray(day, dtype=np.int64))
        self.kwh.append(np.asarray(kwh, dtype=np.float32))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All rows as (cons_no, day, kwh)."""
        return (
            np.concatenate([np.zeros(0, object), *self.cons_no]),
            np.concatenate([np.zeros(0, np.int64), *self.day]),
            np.concatenate([np.zeros(0, np.float32), *self.kwh]),
        )


def make_readings(
    rng: np.random.Generator,
    metered: np.ndarray,
    life: Lifecycle,
    truth: TruthLog,
    events: EventLog,
    bureau_index: int,
) -> tuple[ExtraReadings, dict[int, tuple[str, str]]]:
    """Turn ``metered`` (in place) into AMI readings; return extra rows and bad codes.

    Returns
    -------
    ExtraReadings
        Duplicated and orphan rows to append to the readings table.
    dict
        Customer row → (column, invalid value) to write into the customers table.
    """
    n, d = metered.shape
    stable = life.stable(d)
    flat = metered.reshape(-1)
    count = int(rng.binomial(n * d, BACKGROUND_MISSING_RATE))
    cells = rng.integers(0, n * d, count)
    flat[cells] = np.nan
    failed = cells[rng.random(count) < 0.3]
    events.add(failed // d, failed % d, "ERC31")

    rows = np.flatnonzero(life.replace_day >= 0)
    replacement_gaps(rng, metered, rows, life.replace_day[rows])

    rows = truth.pick(rng, "dq_missing_readings", stable)
    start, end = draw_windows(rng, len(rows), d, (0.05, 0.95), (3, 30))
    sub = metered[rows]
    sub[window_mask(d, start, end)] = np.nan
    metered[rows] = sub
    failing = rng.random(len(rows)) < 0.5
    events.add(rows[failing], start[failing], "ERC31")
    truth.add(
        "dq_missing_readings", rows, start, end, (end - start + 1) / d, "采集失败 / not collected"
    )

    rows = truth.pick(rng, "dq_negative_reading", stable)
    day, _ = draw_windows(rng, len(rows), d, (0.05, 0.95), None)
    value = np.nan_to_num(metered[rows, day], nan=1.0)
    metered[rows, day] = np.round(-np.abs(value) - rng.uniform(0.1, 5.0, len(rows)), 2)
    truth.add("dq_negative_reading", rows, day, day, 1.0, "负电量 / negative kWh")

    extra = ExtraReadings()
    rows = truth.pick(rng, "dq_duplicate_reading", stable)
    start, end = draw_windows(rng, len(rows), d, (0.05, 0.95), (1, 4))
    owner, dup_day = expand_windows(start, end)
    dup_row = rows[owner]
    same = rng.random(len(dup_row)) < 0.5
    value = metered[dup_row, dup_day] * np.where(same, 1.0, rng.uniform(0.5, 1.5, len(dup_row)))
    value = np.round(value, 2)
    extra.add(truth.cons_no[dup_row], dup_day, value)
    truth.add("dq_duplicate_reading", rows, start, end, 1.0, "重复记录 / duplicated rows")

    k = int(rng.binomial(n, truth.config.rate("dq_orphan")))
    # customer numbers start with 5; an orphan's 9 is in no customers table
    orphans = digits(f"9{bureau_index + 1:02d}", np.arange(k), 7).to_numpy(zero_copy_only=False)
    start, end = draw_windows(rng, k, d, (0.05, 0.8), (10, 60))
    owner, o_day = expand_windows(start, end)
    extra.add(orphans[owner], o_day, np.round(rng.lognormal(np.log(5.0), 0.5, len(o_day)), 2))
    truth.add(
        "dq_orphan",
        np.zeros(k, np.int64),
        start,
        end,
        1.0,
        "无档案用户 / no customer record",
        entities=orphans,
    )

    rows = truth.pick(rng, "dq_bad_code", stable)
    which = rng.integers(0, len(BAD_CODES), len(rows))
    day = np.zeros(len(rows), dtype=np.int64)
    end = np.full(len(rows), d - 1)
    in_events = which == len(BAD_CODES) - 1
    day[in_events] = rng.integers(0, d, int(in_events.sum()))
    end[in_events] = day[in_events]
    events.add(rows[in_events], day[in_events], BAD_CODES[-1][2])
    bad = {
        int(r): (BAD_CODES[w][1], BAD_CODES[w][2])
        for r, w in zip(rows[~in_events], which[~in_events], strict=True)
    }
    labels = np.array([f"{t}.{col}={val!r}" for t, col, val in BAD_CODES], dtype=object)
    truth.add("dq_bad_code", rows, day, end, 1.0, labels[which])
    return extra, bad


def absurd_readings(
    rng: np.random.Generator, metered: np.ndarray, life: Lifecycle, truth: TruthLog
) -> None:
    """Put one absurd day (读数异常偏大) into some customers' readings, in place.

    A register jump or a shifted decimal: the day reads 10^3.5 to 10^5 times the customer's
    median positive day, and at least 2,000 kWh, so it is absurd by the rule of
    :mod:`audit_lib.data.absurd` whatever the customer's size. The caller gives this its own
    random stream: the other kinds' draws stay as they were before it existed.
    """
    d = metered.shape[1]
    rows = truth.pick(rng, "dq_absurd_reading", life.stable(d))
    if not len(rows):
        return
    day, _ = draw_windows(rng, len(rows), d, (0.05, 0.95), None)
    sub = metered[rows]
    median = np.nanmedian(np.where(sub > 0, sub, np.nan), axis=1)
    factor = 10.0 ** rng.uniform(3.5, 5.0, len(rows))
    value = np.maximum(
        np.nan_to_num(median, nan=0.0) * factor, 2000.0 * rng.uniform(1, 5, len(rows))
    )
    metered[rows, day] = np.round(value, 2)
    truth.add("dq_absurd_reading", rows, day, day, 1.0, "读数异常偏大 / absurd kWh")


def supply_gaps(
    rng: np.random.Generator, supply: np.ndarray, area_ids: np.ndarray, truth: TruthLog
) -> None:
    """Blank runs of days of some areas' transformer meter (line loss not computable)."""
    n_areas, d = supply.shape
    # scales with the customers' missing-readings rate (0 when faults are switched off)
    scale = truth.config.rate("dq_missing_readings") / DEFAULT_RATES["dq_missing_readings"]
    k = int(rng.binomial(n_areas, min(1.0, AREA_SUPPLY_GAP_RATE * scale)))
    areas = np.sort(rng.choice(n_areas, size=k, replace=False))
    start, end = draw_windows(rng, k, d, (0.05, 0.95), (1, 10))
    sub = supply[areas]
    sub[window_mask(d, start, end)] = np.nan
    supply[areas] = sub
    truth.add(
        "dq_missing_readings",
        areas,
        start,
        end,
        (end - start + 1) / d,
        "台区供电量缺失 / area supply missing",
        entities=area_ids[areas],
        entity_kind="area",
    )


def replacement_gaps(
    rng: np.random.Generator, metered: np.ndarray, rows: np.ndarray, day: np.ndarray
) -> None:
    """What a meter replacement leaves in the readings (in place): a partial reading on the
    day itself, then two days not collected."""
    d = metered.shape[1]
    metered[rows, day] = np.round(metered[rows, day] * rng.uniform(0.2, 0.6, len(rows)), 2)
    for lag in (1, 2):
        metered[rows, np.minimum(day + lag, d - 1)] = np.nan
