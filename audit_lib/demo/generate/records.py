"""Arrow tables of one bureau in the mart's schema, from the generator's arrays."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from audit_lib.demo.generate.billing import Bills
from audit_lib.demo.generate.calendar import Calendar
from audit_lib.demo.generate.identity import draw_identity
from audit_lib.demo.generate.lifecycle import Lifecycle
from audit_lib.demo.generate.org import Org, digits
from audit_lib.demo.generate.population import Population
from audit_lib.demo.generate.tariffs import TARIFF_CODES
from audit_lib.data.schema import (
    AREA_SUPPLY,
    AREAS,
    BILLS,
    CUSTOMER_CLASSES,
    CUSTOMERS,
    METERS,
    PAYMENTS,
    STATIONS,
    Table,
)


def _table(spec: Table, data: dict[str, object]) -> pa.Table:
    arrays = [
        v if isinstance(v, pa.Array | pa.ChunkedArray) else pa.array(v, c.type)
        for c, v in ((c, data[c.name]) for c in spec.columns)
    ]
    return pa.Table.from_arrays(arrays, schema=spec.arrow_schema())


def _const(value: str, k: int) -> pa.Array:
    return pa.repeat(pa.scalar(value), k)


def _dates(cal: Calendar, day: np.ndarray) -> np.ndarray:
    return cal.dates[0] + day.astype("timedelta64[D]")


def area_tables(org: Org, code: str, area_ids: pa.Array) -> dict[str, pa.Table]:
    """Stations (供电所) and station areas (台区)."""
    station_ids = digits(f"{code}S", np.arange(org.n_stations), 3)
    names = pc.binary_join_element_wise(
        f"{code}-", digits("", np.arange(1, org.n_stations + 1), 2), "供电所", ""
    )
    stations = _table(
        STATIONS,
        {"station_id": station_ids, "name_zh": names, "bureau": _const(code, org.n_stations)},
    )
    areas = _table(
        AREAS,
        {
            "area_id": area_ids,
            "station_id": station_ids.take(pa.array(org.station_of_area)),
            "transformer_kva": org.transformer_kva,
            "kind": np.where(org.dedicated, "dedicated", "public").astype(object),
            "bureau": _const(code, org.n_areas),
        },
    )
    return {"stations": stations, "areas": areas}


def customer_tables(
    rng: np.random.Generator,
    pop: Population,
    org: Org,
    cal: Calendar,
    life: Lifecycle,
    cons_no: pa.Array,
    tariff: np.ndarray,
    recorded_multiplier: np.ndarray,
    bad_codes: dict[int, tuple[str, str]],
    code: str,
    area_ids: pa.Array,
) -> dict[str, pa.Table]:
    """Customers (with injected bad codes) and meters (with replacements)."""
    n, d = len(pop), cal.days
    closed = life.close_day < d
    cust_class = np.array(CUSTOMER_CLASSES, dtype=object)[pop.cls]
    status = np.where(closed, "closed", "active").astype(object)
    for row, (column, value) in bad_codes.items():  # a handful of injected rows
        (cust_class if column == "cust_class" else status)[row] = value
    station_ids = digits(f"{code}S", np.arange(org.n_stations), 3)
    open_date = _dates(cal, life.open_day)
    close_date = pa.array(_dates(cal, life.close_day), pa.date32(), mask=~closed)
    customers = _table(
        CUSTOMERS,
        {
            "cons_no": cons_no,
            **draw_identity(rng, pop.cls),
            "station_id": station_ids.take(pa.array(org.station_of_area[org.area_of])),
            "area_id": area_ids.take(pa.array(org.area_of)),
            "cust_class": cust_class,
            "industry": pop.industry,
            "tariff_code": TARIFF_CODES[tariff],
            "voltage_kv": pop.voltage,
            "capacity_kva": pop.capacity,
            "status": status,
            "open_date": open_date,
            "close_date": close_date,
            "bureau": _const(code, n),
        },
    )
    replaced = np.flatnonzero(life.replace_day >= 0)
    first = pc.binary_join_element_wise("M", cons_no, "01", "")
    second = pc.binary_join_element_wise("M", cons_no.take(pa.array(replaced)), "02", "")
    removed = np.where(life.replace_day >= 0, life.replace_day, life.close_day)
    meters = _table(
        METERS,
        {
            "meter_id": pa.concat_arrays([first, second]),
            "cons_no": pa.concat_arrays([cons_no, cons_no.take(pa.array(replaced))]),
            "multiplier": np.concatenate([recorded_multiplier, recorded_multiplier[replaced]]),
            "install_date": np.concatenate([open_date, _dates(cal, life.replace_day[replaced])]),
            "remove_date": pa.array(
                np.concatenate([_dates(cal, removed), _dates(cal, life.close_day[replaced])]),
                pa.date32(),
                mask=np.concatenate([removed >= d, life.close_day[replaced] >= d]),
            ),
            "bureau": _const(code, n + len(replaced)),
        },
    )
    return {"customers": customers, "meters": meters}


def bill_tables(
    cal: Calendar,
    cons_no: pa.Array,
    bills: Bills,
    payments: dict[str, np.ndarray],
    code: str,
) -> dict[str, pa.Table]:
    """Bills and payments."""
    labels = pa.array(cal.month_labels, pa.string())
    compact = pc.replace_substring(labels, "-", "")
    cols = dict(bills.cols)
    k = len(bills.row)
    demand = cols.pop("max_demand_kw")
    tariff = cols.pop("tariff_code")
    bill_table = _table(
        BILLS,
        {
            "cons_no": cons_no.take(pa.array(bills.row)),
            **cols,
            "tariff_code": pa.array(TARIFF_CODES, pa.string()).take(pa.array(tariff)),
            "max_demand_kw": pa.array(demand, pa.float64(), mask=np.isnan(demand)),
            "bureau": _const(code, k),
            "month": labels.take(pa.array(bills.month)),
        },
    )
    k = len(payments["row"])
    cons = cons_no.take(pa.array(payments["row"]))
    month = pa.array(payments["month"])
    pay_table = _table(
        PAYMENTS,
        {
            "payment_id": pc.binary_join_element_wise("P", cons, compact.take(month), ""),
            "cons_no": cons,
            "amount": payments["amount"],
            "paid_date": payments["paid_date"],
            "due_date": payments["due_date"],
            "bureau": _const(code, k),
            "month": labels.take(month),
        },
    )
    return {"bills": bill_table, "payments": pay_table}


def supply_table(cal: Calendar, supply: np.ndarray, area_ids: pa.Array, code: str) -> pa.Table:
    """Daily area supply, one row per area and day (null = transformer meter not read)."""
    n_areas, d = supply.shape
    flat = supply.reshape(-1)
    return _table(
        AREA_SUPPLY,
        {
            "area_id": area_ids.take(pa.array(np.repeat(np.arange(n_areas), d))),
            "date": np.tile(cal.dates, n_areas),
            "supply_kwh": pa.array(flat, pa.float64(), mask=np.isnan(flat)),
            "bureau": _const(code, n_areas * d),
            "month": np.tile(np.array(cal.month_labels, dtype=object)[cal.month_of_day], n_areas),
        },
    )
