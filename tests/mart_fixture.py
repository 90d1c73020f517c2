"""A tiny, consistent data set that follows audit_lib.data.schema, for the data tests.

Two bureaus, a few stations and areas, ``n`` customers per bureau, daily readings over
``days`` days, monthly bills that agree with the readings and registers, payments, tariffs,
tickets and meter events. Everything derives from one seeded generator.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

BUREAUS = (("YZ", "渝中", "Yuzhong"), ("JB", "江北", "Jiangbei"))
CLASSES = ("residential", "commercial", "industrial", "agricultural")
TARIFF_OF = {
    "residential": "RES1",
    "commercial": "COM1",
    "industrial": "IND1",
    "agricultural": "AGR1",
}


def tiny_dataset(
    seed: int = 1, n: int = 12, days: int = 59, start: str = "2025-01-01"
) -> dict[str, pa.Table]:
    """Return mart table name → Arrow table for a tiny consistent data set."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=days, freq="D")
    out: dict[str, list[pd.DataFrame]] = {}

    def add(name: str, frame: pd.DataFrame) -> None:
        out.setdefault(name, []).append(frame)

    add("bureaus", pd.DataFrame(BUREAUS, columns=["bureau", "name_zh", "name_en"]))
    add(
        "tariffs",
        pd.DataFrame(
            {
                "tariff_code": list(TARIFF_OF.values()),
                "name_zh": ["居民阶梯", "一般工商业", "大工业", "农业生产"],
                "name_en": ["residential tiered", "commercial", "large industry", "agricultural"],
                "kind": ["tiered", "flat", "two_part", "flat"],
                "classes": list(TARIFF_OF),
                "price": [0.52, 0.65, 0.55, 0.48],
                "tier2_kwh": [200.0, None, None, None],
                "tier2_price": [0.57, None, None, None],
                "tier3_kwh": [400.0, None, None, None],
                "tier3_price": [0.82, None, None, None],
                "capacity_price": [None, None, 28.0, None],
                "valid_from": pd.to_datetime(["2020-01-01"] * 4),
                "valid_to": pd.to_datetime([None] * 4),
            }
        ),
    )
    for b, name_zh, _ in BUREAUS:
        stations = [f"{b}-S{i}" for i in (1, 2)]
        areas = [f"{b}-A{i}" for i in (1, 2, 3)]
        add(
            "stations",
            pd.DataFrame(
                {
                    "station_id": stations,
                    "name_zh": [f"{name_zh}{i}所" for i in (1, 2)],
                    "bureau": b,
                }
            ),
        )
        add(
            "areas",
            pd.DataFrame(
                {"area_id": areas, "station_id": [stations[0], stations[0], stations[1]],
                 "transformer_kva": [400.0, 630.0, 315.0], "kind": "public", "bureau": b}
            ),
        )  # fmt: skip
        cons = np.array([f"{'1' if b == 'YZ' else '2'}{i:09d}" for i in range(n)])
        cls = np.array([CLASSES[i % 4] if i % 3 == 0 else "residential" for i in range(n)])
        area = np.array([areas[i % 3] for i in range(n)])
        station = np.where(area == areas[2], stations[1], stations[0])
        add(
            "customers",
            pd.DataFrame(
                {
                    "cons_no": cons, "name": [f"客户{i}" for i in range(n)], "phone": None,
                    "id_no": None, "station_id": station, "area_id": area, "cust_class": cls,
                    "industry": "urban_household", "tariff_code": [TARIFF_OF[c] for c in cls],
                    "voltage_kv": 0.22, "capacity_kva": 10.0, "status": "active",
                    "open_date": pd.Timestamp("2015-03-01"), "close_date": pd.NaT, "bureau": b,
                }
            ),
        )  # fmt: skip
        mult = np.where(cls == "industrial", 40.0, 1.0)
        add(
            "meters",
            pd.DataFrame({"meter_id": [f"M{c}" for c in cons], "cons_no": cons, "multiplier": mult,
                          "install_date": pd.Timestamp("2015-03-01"), "remove_date": pd.NaT,
                          "bureau": b}),
        )  # fmt: skip
        kwh = rng.gamma(3.0, 3.0, size=(n, days)).astype(np.float32)
        kwh[rng.random((n, days)) < 0.05] = np.nan
        add(
            "readings",
            pd.DataFrame({"cons_no": np.repeat(cons, days), "date": np.tile(dates, n),
                          "kwh": kwh.ravel(), "bureau": b}),
        )  # fmt: skip
        supply = pd.DataFrame(np.nan_to_num(kwh), index=area).groupby(level=0).sum() * 1.04
        add(
            "area_supply",
            pd.DataFrame({"area_id": np.repeat(supply.index.to_numpy(), days),
                          "date": np.tile(dates, len(supply)),
                          "supply_kwh": supply.to_numpy().ravel().astype(float), "bureau": b}),
        )  # fmt: skip
        monthly = pd.DataFrame(np.nan_to_num(kwh), columns=dates).T.resample("MS").sum().T
        reg = np.zeros(n)
        for _j, month in enumerate(monthly.columns):
            mk = monthly[month].to_numpy(dtype=float).round(1)
            m = month.strftime("%Y-%m")
            price = np.array(
                [
                    {"RES1": 0.52, "COM1": 0.65, "IND1": 0.55, "AGR1": 0.48}[TARIFF_OF[c]]
                    for c in cls
                ]
            )
            add(
                "bills",
                pd.DataFrame(
                    {"cons_no": cons, "start_reg": reg, "end_reg": reg + mk / mult,
                     "multiplier": mult, "kwh": mk, "max_demand_kw": None,
                     "tariff_code": [TARIFF_OF[c] for c in cls], "energy_charge": mk * price,
                     "capacity_charge": 0.0, "amount": mk * price, "bureau": b, "month": m}
                ),
            )  # fmt: skip
            reg = reg + mk / mult
            add(
                "payments",
                pd.DataFrame({"payment_id": [f"P{c}{m}" for c in cons], "cons_no": cons,
                              "amount": mk * price, "paid_date": month + pd.Timedelta(days=40),
                              "due_date": month + pd.Timedelta(days=45), "bureau": b, "month": m}),
            )  # fmt: skip
        add(
            "tickets",
            pd.DataFrame({"ticket_id": [f"T{b}{i}" for i in range(3)], "cons_no": cons[:3],
                          "area_id": area[:3], "kind": ["complaint", "fault", "enquiry"],
                          "opened": dates[[3, 10, 40]] + pd.Timedelta(hours=9),
                          "closed": dates[[4, 11, 41]] + pd.Timedelta(hours=9),
                          "topic": "billing", "bureau": b}),
        )  # fmt: skip
        tickets = out["tickets"][-1]
        tickets["month"] = tickets["opened"].dt.strftime("%Y-%m")
        add(
            "meter_events",
            pd.DataFrame({"event_id": [f"E{b}{i}" for i in range(2)], "cons_no": cons[1:3],
                          "meter_id": [f"M{c}" for c in cons[1:3]], "code": ["ERC30", "ERC37"],
                          "time": dates[[5, 35]] + pd.Timedelta(hours=2), "bureau": b}),
        )  # fmt: skip
        events = out["meter_events"][-1]
        events["month"] = events["time"].dt.strftime("%Y-%m")
    tables = {}
    for name, frames in out.items():
        frame = pd.concat(frames, ignore_index=True)
        tables[name] = pa.Table.from_pandas(frame, preserve_index=False)
    return tables


def write_tiny_mart(root: object, **kwargs: object) -> dict[str, pa.Table]:
    """Write :func:`tiny_dataset` into a mart folder and return the tables."""
    from audit_lib.data.mart import write_table

    tables = tiny_dataset(**kwargs)  # type: ignore[arg-type]
    for name, table in tables.items():
        write_table(root, name, table)  # type: ignore[arg-type]
    return tables
