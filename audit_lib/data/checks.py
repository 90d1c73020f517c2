"""Row checks applied on the way into the mart (schema, ranges, code lists, duplicate keys).

:func:`check_chunk` turns a chunk of raw source values (mart column names) into typed rows
that pass every check, and a frame of rejects keeping the original values as strings with
the first reason each row failed. Reasons are short codes (``negative_kwh``,
``unknown_code:tariff_code`` …); :data:`REASONS` gives their Chinese and English labels.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from audit_lib.data.ct_ratios import standard_multipliers
from audit_lib.data.schema import (
    BUREAU,
    CUSTOMER_CLASSES,
    CUSTOMER_STATUSES,
    METER_EVENT_CODES,
    MONTH,
    TABLES,
    TARIFF_KINDS,
    TICKET_KINDS,
)

EARLIEST = dt.date(1970, 1, 1)

# reason code → (中文, English)
REASONS: dict[str, tuple[str, str]] = {
    "wrong_type": ("类型错误", "value of the wrong type"),
    "null": ("必填为空", "null where a value is required"),
    "negative_kwh": ("电量为负", "negative kWh"),
    "absurd_kwh": ("电量超出合理范围", "absurd kWh"),
    "out_of_range": ("数值超出合理范围", "value out of its plausible range"),
    "unknown_code": ("代码不在代码表中", "code not in its code list"),
    "date_out_of_range": ("日期超出范围", "date out of range"),
    "bad_month": ("月份格式错误", "month not YYYY-MM"),
    "duplicate_key": ("主键重复", "duplicate key"),
}

# upper bounds of a plausible value: daily kWh of one customer, of one area, monthly billed kWh
KWH_LIMITS: dict[str, tuple[str, float]] = {
    "readings": ("kwh", 1e6),
    "area_supply": ("supply_kwh", 1e7),
    "bills": ("kwh", 1e9),
}

MAX_MULTIPLIER = 10 * float(standard_multipliers().max())
"""Largest plausible multiplier: ten times the largest standard CT × PT product (a typo of an
extra digit still reaches the mart, where the multiplier theme finds it; 10¹² does not)."""

# table → (column, lowest, highest plausible value), both included; money in 元
RANGES: dict[str, tuple[tuple[str, float, float], ...]] = {
    "customers": (("capacity_kva", 0.001, 1e6),),
    "meters": (("multiplier", 1.0, MAX_MULTIPLIER),),
    "bills": (
        ("multiplier", 1.0, MAX_MULTIPLIER),
        ("max_demand_kw", 0.0, 1e6),
        ("energy_charge", -1e8, 1e9),
        ("amount", -1e8, 1e9),
    ),
    "payments": (("amount", -1e8, 1e9),),
    "tariffs": (("price", 0.001, 100.0),),
}

# columns whose date must lie between EARLIEST and the ingest day
DATE_CHECKS: dict[str, tuple[str, ...]] = {
    "readings": ("date",),
    "area_supply": ("date",),
    "payments": ("paid_date",),
    "tickets": ("opened",),
    "meter_events": ("time",),
    "customers": ("open_date",),
    "meters": ("install_date",),
}

# table → (column, fixed code list); tariff codes and bureaus come from the source itself
FIXED_CODES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "customers": (("cust_class", CUSTOMER_CLASSES), ("status", CUSTOMER_STATUSES)),
    "tariffs": (("kind", TARIFF_KINDS),),
    "tickets": (("kind", TICKET_KINDS),),
    "meter_events": (("code", tuple(METER_EVENT_CODES)),),
}


def reason_label(reason: str, lang: str = "zh") -> str:
    """Readable label of a reason code such as ``unknown_code:tariff_code``."""
    code, _, col = reason.partition(":")
    zh, en = REASONS.get(code, (code, code))
    label = zh if lang == "zh" else en
    return f"{label} ({col})" if col else label


@dataclass
class CodeLists:
    """Codes known while ingesting: bureaus and tariffs accepted earlier in the same run."""

    bureaus: set[str] = field(default_factory=set)
    tariffs: set[str] = field(default_factory=set)


@dataclass
class KeyTracker:
    """Remembers the keys seen so far in a table to reject later duplicates.

    Keys are kept as 64-bit hashes in a few sorted runs whose sizes at least double from
    one run to the next (merged like a log-structured tree), so checking a chunk costs
    O(chunk × log rows) however many chunks came before.
    """

    runs: list[np.ndarray] = field(default_factory=list)

    def duplicated(self, keys: pd.DataFrame) -> np.ndarray:
        """Mark rows whose key appeared earlier (in this chunk or a previous one), then add."""
        h = pd.util.hash_pandas_object(keys, index=False).to_numpy()
        dup = pd.Series(h).duplicated().to_numpy().copy()
        for run in self.runs:
            pos = np.searchsorted(run, h)
            pos[pos == run.size] = 0
            dup |= run[pos] == h
        self.runs.append(np.sort(h[~dup]))
        while len(self.runs) > 1 and self.runs[-2].size <= 2 * self.runs[-1].size:
            last = self.runs.pop()
            self.runs[-1] = np.sort(np.concatenate([self.runs[-1], last]))
        return dup


class _Flags:
    """The first failing reason per row."""

    def __init__(self, n: int) -> None:
        self.reason = np.full(n, "", dtype=object)

    def flag(self, mask: np.ndarray | pd.Series, reason: str) -> None:
        m = np.asarray(mask, dtype=bool) & (self.reason == "")
        self.reason[m] = reason

    @property
    def ok(self) -> np.ndarray:
        return np.asarray(self.reason == "", dtype=bool)


def _convert(raw: pd.Series, typ: pa.DataType) -> pd.Series:
    if pa.types.is_floating(typ):
        return pd.to_numeric(raw, errors="coerce").astype("float64")
    if pa.types.is_date(typ) or pa.types.is_timestamp(typ):
        values = pd.to_datetime(raw, errors="coerce", format="ISO8601")
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_localize(None)
        return values.dt.normalize() if pa.types.is_date(typ) else values
    text = raw.astype("string")
    return text.str.strip() if pa.types.is_string(typ) else text


def _to_arrow(values: pd.Series, typ: pa.DataType) -> pa.Array:
    if pa.types.is_date(typ):
        days = values.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
        return pa.array(days, mask=values.isna().to_numpy(), type=pa.date32())
    if pa.types.is_timestamp(typ):
        secs = values.to_numpy(dtype="datetime64[ns]").astype("datetime64[s]")
        return pa.array(secs, mask=values.isna().to_numpy(), type=typ)
    if pa.types.is_string(typ):
        return pa.array(values.astype(object).where(values.notna(), None), type=typ)
    return pa.array(values.to_numpy(), mask=values.isna().to_numpy(), type=pa.float64()).cast(typ)


def check_chunk(
    table: str,
    raw: pd.DataFrame,
    *,
    codes: CodeLists,
    keys: KeyTracker,
    today: dt.date,
    month_from: str | None = None,
) -> tuple[pa.Table, pd.DataFrame]:
    """Check one chunk of raw source rows.

    Parameters
    ----------
    table
        Mart table name.
    raw
        Raw values with mart column names (as :func:`audit_lib.data.source.read_chunks` gives).
    codes
        Bureau and tariff codes known so far.
    keys
        Key tracker of the table, to reject duplicates across chunks.
    today
        Latest acceptable date for the date checks.
    month_from
        Column that decides the ``month`` partition when the source has none.

    Returns
    -------
    accepted : pyarrow.Table
        Typed rows that pass, with the table's columns.
    rejects : DataFrame
        Rejected rows: original values as strings plus ``reason``.
    """
    spec = TABLES[table]
    flags = _Flags(len(raw))
    typed: dict[str, pd.Series] = {}
    for col in spec.columns:
        if col.name not in raw.columns:
            continue
        value = _convert(raw[col.name], col.type)
        values = raw[col.name].to_numpy(dtype=object)
        was = raw[col.name].notna().to_numpy() & (values != "")  # an empty string is no value
        if not pa.types.is_string(col.type):
            bad = was & value.isna().to_numpy()
            if pa.types.is_floating(col.type):
                bad |= np.isinf(value.to_numpy(na_value=np.nan))
            flags.flag(bad, f"wrong_type:{col.name}")
        if not col.nullable:
            flags.flag(~was, f"null:{col.name}")
        typed[col.name] = value
    if table in KWH_LIMITS:
        col_name, limit = KWH_LIMITS[table]
        kwh = typed[col_name].to_numpy(na_value=np.nan)
        flags.flag(kwh < 0, f"negative_kwh:{col_name}")
        flags.flag(kwh > limit, f"absurd_kwh:{col_name}")
    for col_name, low, high in RANGES.get(table, ()):
        number = typed[col_name].to_numpy(na_value=np.nan)
        flags.flag((number < low) | (number > high), f"out_of_range:{col_name}")  # NaN: not here
    for col_name, allowed in FIXED_CODES.get(table, ()):
        flags.flag(~typed[col_name].isin(allowed).to_numpy(dtype=bool), f"unknown_code:{col_name}")
    if table == "tariffs":
        classes = typed["classes"].fillna("").str.split(",")
        valid = classes.map(lambda cs: all(c.strip() in CUSTOMER_CLASSES for c in cs))
        flags.flag(~valid.to_numpy(dtype=bool), "unknown_code:classes")
    if "tariff_code" in typed and table != "tariffs":
        flags.flag(~typed["tariff_code"].isin(codes.tariffs).to_numpy(dtype=bool),
                   "unknown_code:tariff_code")  # fmt: skip
    if BUREAU in typed and table != "bureaus":
        flags.flag(
            ~typed[BUREAU].isin(codes.bureaus).to_numpy(dtype=bool), f"unknown_code:{BUREAU}"
        )
    today_ts = pd.Timestamp(today) + pd.Timedelta(days=1)
    for col_name in DATE_CHECKS.get(table, ()):
        d = typed[col_name]
        flags.flag(((d < pd.Timestamp(EARLIEST)) | (d >= today_ts)).fillna(False).to_numpy(bool),
                   f"date_out_of_range:{col_name}")  # fmt: skip
    if spec.partitioning == "bureau_month":
        if MONTH in typed:
            good = typed[MONTH].str.fullmatch(r"\d{4}-(0[1-9]|1[0-2])").fillna(False)
            flags.flag(~good.to_numpy(dtype=bool), f"bad_month:{MONTH}")
        elif month_from is not None:
            month = typed[month_from].to_numpy(dtype="datetime64[ns]").astype("datetime64[M]")
            typed[MONTH] = pd.Series(month.astype(str), index=raw.index, dtype="string")
    key_frame = pd.DataFrame({k: typed[k] for k in spec.key}).loc[flags.ok]
    dup = np.zeros(len(raw), dtype=bool)
    dup[np.flatnonzero(flags.ok)] = keys.duplicated(key_frame)
    flags.flag(dup, "duplicate_key:" + "+".join(spec.key))
    ok = flags.ok
    accepted = pa.table(
        {c.name: _to_arrow(typed[c.name][ok], c.type) for c in spec.columns if c.name in typed}
    )
    rejects = raw.loc[~ok].astype("string")
    rejects["reason"] = pd.Series(flags.reason[~ok], index=rejects.index, dtype="string")
    return accepted, rejects
