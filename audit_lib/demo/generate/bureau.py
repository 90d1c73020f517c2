"""One bureau, end to end: population → consumption → injections → bills → tables.

The customers × days matrix is used in place through its stages (true kWh → area supply →
metered kWh → bills → AMI readings), so a bureau costs about one float32 matrix of memory.
Readings are turned into Arrow rows one month at a time, by :meth:`BureauData.readings_month`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from audit_lib.demo.generate import billing, dq
from audit_lib.demo.generate.anomalies import (
    inject_metering,
    inject_multiplier_not_updated,
    inject_over_capacity,
)
from audit_lib.demo.generate.calendar import Calendar, build_calendar
from audit_lib.demo.generate.config import DemoConfig, bureau_sizes
from audit_lib.demo.generate.lifecycle import Lifecycle, apply_lifecycle
from audit_lib.demo.generate.org import Org, build_org, cons_numbers, digits
from audit_lib.demo.generate.city import demo_bureau
from audit_lib.demo.generate.population import draw_population
from audit_lib.demo.generate.profiles import heat_anomaly, true_consumption
from audit_lib.demo.generate.records import (
    area_tables,
    bill_tables,
    customer_tables,
    supply_table,
)
from audit_lib.demo.generate.service import EventLog, build_tickets
from audit_lib.demo.generate.truth import TruthLog


@dataclass
class BureauData:
    """Everything generated for one bureau."""

    code: str
    index: int
    cal: Calendar
    cons_no: pa.Array
    readings: np.ndarray  # (customers, days) float32 AMI kWh, NaN = not collected
    life: Lifecycle
    extra: dq.ExtraReadings
    tables: dict[str, pa.Table]  # every table except readings
    truth: pa.Table
    _grids: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def readings_month(self, m: int, *, encoded: bool = False) -> pa.Table:
        """Readings rows of month ``m`` (open accounts only, plus duplicates and orphans).

        With ``encoded`` (for the writer), ``cons_no`` is dictionary-encoded in chunks of
        whole customers (~1M rows each, one small dictionary per chunk), so the Parquet
        writer stores the codes directly, and the partition columns are left out.
        Otherwise the table has every column of the schema.
        """
        sl = self.cal.month_slice(m)
        width = sl.stop - sl.start
        block = np.ascontiguousarray(self.readings[:, sl]).reshape(-1)
        lo = np.clip(self.life.open_day - sl.start, 0, width)
        hi = np.clip(self.life.close_day - sl.start, 0, width)
        owner, local = self._grid(width)
        kwh = block
        if lo.max() > 0 or hi.min() < width:  # some accounts opened or closed this month
            t = np.arange(width)
            valid = ((t >= lo[:, None]) & (t < hi[:, None])).reshape(-1)
            owner, local, kwh = owner[valid], local[valid], block[valid]
        e_cons, e_day, e_kwh = self.extra.arrays()
        sel = (e_day >= sl.start) & (e_day < sl.stop)
        cons = self._encode_customers(owner, width, pa.array(e_cons[sel], pa.string()))
        if not encoded:
            cons = cons.cast(pa.string())
        epoch = np.int32(int(self.cal.dates[0].astype(np.int64)))
        day = local + (epoch + np.int32(sl.start))
        extra_day = (e_day[sel] + epoch).astype(np.int32)
        k = len(day) + len(extra_day)
        data = {
            "cons_no": cons,
            "date": pa.chunked_array(
                [pa.array(day).view(pa.date32()), pa.array(extra_day).view(pa.date32())]
            ),
            "kwh": pa.chunked_array(  # NaN → null
                [pa.array(x, pa.float32(), from_pandas=True) for x in (kwh, e_kwh[sel])]
            ),
        }
        if not encoded:  # partition columns: the writer keeps them in folder names instead
            data["bureau"] = pa.repeat(pa.scalar(self.code), k)
            data["month"] = pa.repeat(pa.scalar(self.cal.month_labels[m]), k)
        return pa.table(data)

    def _grid(self, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(customer row, day of month) of every cell of a ``width``-day month, cached."""
        if width not in self._grids:
            n = len(self.cons_no)
            self._grids[width] = (
                np.repeat(np.arange(n, dtype=np.int32), width),
                np.tile(np.arange(width, dtype=np.int32), n),
            )
        return self._grids[width]

    def _encode_customers(self, owner: np.ndarray, width: int, extra: pa.Array) -> pa.ChunkedArray:
        """Dictionary chunks of whole customers (owner is sorted), then the extra rows."""
        n = len(self.cons_no)
        per = max(1, (1 << 20) // max(width, 1))
        firsts = np.arange(0, n + per, per).clip(max=n)
        firsts = np.unique(firsts)
        rows = np.searchsorted(owner, firsts)
        chunks = [  # a dozen chunks per month, not one per customer
            pa.DictionaryArray.from_arrays(
                pa.array(owner[rows[i] : rows[i + 1]] - np.int32(firsts[i])),
                self.cons_no.slice(int(firsts[i]), int(firsts[i + 1] - firsts[i])),
            )
            for i in range(len(firsts) - 1)
        ]
        chunks.append(pc.dictionary_encode(extra).cast(pa.dictionary(pa.int32(), pa.string())))
        return pa.chunked_array(chunks, type=pa.dictionary(pa.int32(), pa.string()))


def build_bureau(config: DemoConfig, bureau_index: int) -> BureauData:
    """Generate bureau number ``bureau_index`` (0-based in the city's order)."""
    spec = demo_bureau(bureau_index)
    code = spec.code
    n = int(bureau_sizes(config)[bureau_index])
    rng = np.random.default_rng([config.seed, bureau_index])
    cal = build_calendar(config.start, config.days)
    pop, org = build_org(rng, draw_population(rng, n, spec.zone == "urban_core"))
    cons_pa = cons_numbers(bureau_index, np.arange(n))
    cons_np = cons_pa.to_numpy(zero_copy_only=False)
    truth = TruthLog(config, code, cal, cons_np)
    events = EventLog()

    kwh = true_consumption(rng, pop, cal, heat_anomaly(config.seed, cal.days))
    life = apply_lifecycle(rng, pop, kwh, truth, events)
    over = inject_over_capacity(rng, pop, cal, life, kwh, truth)
    supply = area_supply(rng, kwh, org)
    # from here on the matrix holds what the meters record
    metering = inject_metering(rng, pop, cal, life, kwh, truth, events)
    # a kind added later draws from a stream of its own: every earlier draw is unchanged
    own = np.random.default_rng([config.seed, bureau_index, 2])
    lifecycle_replacements = life.replace_day.copy()
    late = inject_multiplier_not_updated(
        own, pop, cal, life, kwh, metering.recorded_multiplier, truth
    )
    np.round(kwh, 2, out=kwh)  # meters report 0.01 kWh; bills sum these values
    bills = billing.build_bills(
        rng, pop, cal, life, kwh, metering.recorded_multiplier, over, truth, events
    )
    payments = billing.build_payments(rng, cal, life, bills, truth)
    extra, bad_codes = dq.make_readings(
        rng, kwh, replace(life, replace_day=lifecycle_replacements), truth, events, bureau_index
    )
    dq.replacement_gaps(own, kwh, late.rows, late.day)
    area_ids = digits(f"{code}T", np.arange(org.n_areas), 6)
    dq.supply_gaps(rng, supply, area_ids.to_numpy(zero_copy_only=False), truth)
    events.add_background(rng, n, cal.days, pop.cls)
    tickets = build_tickets(
        rng, cal, org, cons_np, (life.open_day, life.close_day), truth,
        metering.theft_rows, metering.theft_start, code, bureau_index,
    )  # fmt: skip
    dq.absurd_readings(np.random.default_rng([config.seed, bureau_index, 1]), kwh, life, truth)
    fitted = own.random(len(late.rows)) < 0.5  # the fitter opens the cover, as in the lifecycle
    events.add(late.rows[fitted], late.day[fitted], "ERC37")
    tables = {
        **area_tables(org, code, area_ids),
        **customer_tables(
            rng, pop, org, cal, life, cons_pa, bills.tariff,
            metering.recorded_multiplier, bad_codes, code, area_ids,
        ),
        **bill_tables(cal, cons_pa, bills, payments, code),
        "area_supply": supply_table(cal, supply, area_ids, code),
        "tickets": tickets,
        "meter_events": events.table(rng, cal, cons_np, life.replace_day, code, bureau_index),
    }  # fmt: skip
    return BureauData(code, bureau_index, cal, cons_pa, kwh, life, extra, tables, truth.table())


def area_supply(rng: np.random.Generator, true_kwh: np.ndarray, org: Org) -> np.ndarray:
    """Daily kWh through each area's transformer: Σ true kWh × (1 + technical loss).

    Loss is a few percent per public area (0.5–1.5 % for dedicated transformers), with
    daily noise. True kWh includes what thieves take, so theft raises the area's loss rate.
    """
    summed = np.add.reduceat(true_kwh, org.area_starts, axis=0).astype(np.float64)
    n_areas, d = summed.shape
    loss = np.where(
        org.dedicated, rng.uniform(0.005, 0.015, n_areas), rng.uniform(0.02, 0.05, n_areas)
    )
    daily = loss[:, None] + rng.normal(0.0, 0.004, (n_areas, d))
    return np.round(summed * (1.0 + np.maximum(daily, 0.0)), 2)
