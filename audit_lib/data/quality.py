"""Data-quality checks over the mart (数据质量核查), each one DuckDB query.

Every check returns a frame of hits with the columns of :data:`HIT_COLUMNS` — the entity
(a customer, area or bill), the check, the days (``date`` to ``end``) or month concerned and
a detail line — and they feed the data-quality themes; :func:`hits_in_period` keeps the hits
that touch a period. :data:`CHECKS` lists them with their Chinese and English
names; :func:`run_checks` runs all (or some) for one bureau and :func:`summarize` counts hits.
Given a matrix already built for the bureau (a detection context's), the checks on readings
per customer and day read it instead of building their own (:mod:`audit_lib.data.quality_matrix`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from audit_lib.data import absurd
from audit_lib.data.access import Mart, arrow_frame
from audit_lib.data.gaps import customer_gaps
from audit_lib.data.mart import partitions
from audit_lib.data.matrix import ConsumptionMatrix, build_matrix
from audit_lib.data.quality_matrix import (
    BuiltMatrix,
    Covered,
    covering,
    duplicated,
    gaps,
    negative_readings,
    stray_readings,
)
from audit_lib.data.schema import (
    BUREAU,
    CONS_NO,
    CUSTOMER_CLASSES,
    CUSTOMER_STATUSES,
    DATE,
    METER_EVENT_CODES,
    MONTH,
    READINGS,
    TICKET_KINDS,
)
from audit_lib.errors import ConfigError

HIT_COLUMNS = ["entity", "entity_kind", "check", "date", "end", "month", "detail", "bureau"]


@dataclass(frozen=True)
class Check:
    """One data-quality check: name, labels, the tables it needs and its query builder."""

    name: str
    name_zh: str
    name_en: str
    tables: tuple[str, ...]
    query: Callable[..., str] | None = None
    run: Callable[[Mart, str | None, dict[str, float], BuiltMatrix | None], pd.DataFrame] | None = (
        None
    )
    readings: Callable[[Covered, str], pa.Table | None] | None = None
    """The rows of ``readings`` the query needs, from a matrix that covers the bureau (and
    the scan's ledger): the query is then run on them (``query(name, params,
    readings=<relation>)``) instead of on every reading; ``None`` from it: every reading."""


def _in(values: Iterable[str]) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def _bureau(alias: str = "") -> str:
    col = f"{alias}.bureau" if alias else "bureau"
    return f"($bureau IS NULL OR {col} = $bureau)"


def _gaps(check: str, min_days: int, kind: str) -> str:
    """Runs of at least ``min_days`` days without a non-null value (gaps and islands).

    Customers are expected from their open date to the day before their close date, areas
    every day; both within the span of days the table holds for the bureau. (Customers use
    the matrix form in :mod:`audit_lib.data.gaps`; this SQL serves the station areas.)
    """
    if kind == "customer":
        facts, key, value, ref = "readings", "cons_no", "kwh", "customers"
        lo, hi = "greatest(s.d0, e.open_date)", "least(s.d1, coalesce(e.close_date - 1, s.d1))"
    else:
        facts, key, value, ref = "area_supply", "area_id", "supply_kwh", "areas"
        lo, hi = "s.d0", "s.d1"
    return f"""
    WITH span AS (SELECT bureau, min(date) AS d0, max(date) AS d1 FROM {facts}
                  WHERE {_bureau()} GROUP BY bureau),
    ent AS (SELECT e.{key} AS key, e.bureau, {lo} AS lo, {hi} AS hi
            FROM {ref} e JOIN span s ON s.bureau = e.bureau WHERE {_bureau("e")}),
    pts AS (SELECT f.{key} AS key, f.date FROM {facts} f JOIN ent ON ent.key = f.{key}
            WHERE {_bureau("f")} AND f.{value} IS NOT NULL AND f.date BETWEEN ent.lo AND ent.hi
            UNION ALL SELECT key, lo - 1 FROM ent WHERE lo <= hi
            UNION ALL SELECT key, hi + 1 FROM ent WHERE lo <= hi),
    runs AS (SELECT key, lag(date) OVER (PARTITION BY key ORDER BY date) + 1 AS first, date - 1 AS last
             FROM pts)
    SELECT runs.key AS entity, '{kind}' AS entity_kind, '{check}' AS "check", first AS date,
           last AS "end", strftime(first, '%Y-%m') AS month,
           printf('连续 %d 天无数据 (%s 至 %s) / %d days missing', date_diff('day', first, last) + 1,
                  first, last, date_diff('day', first, last) + 1) AS detail, ent.bureau
    FROM runs JOIN ent USING (key)
    WHERE date_diff('day', first, last) + 1 >= {int(min_days)}"""


def _missing(
    mart: Mart, check: str, bureau: str | None, p: dict[str, float], built: BuiltMatrix | None
) -> pd.DataFrame:
    """Missing readings per bureau on the matrix (see :mod:`audit_lib.data.gaps`)."""
    frames = []
    for code in [bureau] if bureau else mart.bureau_codes():
        covered = covering(mart, code, built)
        if covered is None:
            runs = customer_gaps(mart, code, int(p["min_missing_days"]))
        else:
            runs = gaps(covered, int(p["min_missing_days"]))
        if len(runs):
            frames.append(runs.assign(bureau=code))
    if not frames:
        return pd.DataFrame(columns=HIT_COLUMNS)
    runs = pd.concat(frames, ignore_index=True)
    first = runs.start.dt.strftime("%Y-%m-%d")
    last = runs.end.dt.strftime("%Y-%m-%d")
    n = runs.days.astype(str)
    return pd.DataFrame(
        {
            "entity": runs.entity,
            "entity_kind": "customer",
            "check": check,
            "date": runs.start,
            "end": runs.end,
            "month": runs.start.dt.strftime("%Y-%m"),
            "detail": "连续 "
            + n
            + " 天无数据 ("
            + first
            + " 至 "
            + last
            + ") / "
            + n
            + " days missing",
            "bureau": runs.bureau,
        }
    )


def _missing_supply(check: str, p: dict[str, float]) -> str:
    """Days without the station area's supply, from one day on (``min_missing_supply_days``).

    Unlike a customer's meter, whose isolated missed days are routine collection failures
    filled by the next read, a day without the transformer meter's supply leaves that day's
    station-area line loss not computable, so a single day is already a fault.
    """
    return _gaps(check, int(p["min_missing_supply_days"]), "area")


def _negative(check: str, p: dict[str, float], readings: str = "readings") -> str:
    return f"""
    SELECT cons_no AS entity, 'customer' AS entity_kind, '{check}' AS "check", date,
           date AS "end", month, printf('日电量为负 %.2f kWh / negative daily kWh', kwh) AS detail, bureau
    FROM {readings} WHERE {_bureau()} AND kwh < 0"""


def _duplicate(
    mart: Mart, check: str, bureau: str | None, p: dict[str, float], built: BuiltMatrix | None
) -> pd.DataFrame:
    """Readings repeated on the same customer and day, one month partition at a time.

    Duplicates share the day, hence the month partition: grouping partition by partition
    keeps the hash table to one month of one bureau. A matrix that covers the bureau's
    readings already knows its repeated cells and orphan rows: no grouping then.
    """
    covered = covering(mart, bureau, built)
    if covered is not None:
        pairs = duplicated(covered)
        date = pairs[DATE].astype("datetime64[us]")
        n = pairs["count"].astype(str)
        return pd.DataFrame(
            {
                "entity": pairs[CONS_NO].to_numpy(),
                "entity_kind": "customer",
                "check": check,
                "date": date,
                "end": date,
                "month": date.dt.strftime("%Y-%m"),
                "detail": "同日 " + n + " 条读数 / " + n + " readings on one day",
                "bureau": bureau,
            }
        )
    frames = []
    clean: dict[str, bool] = {}
    for rel in partitions(mart.root, READINGS):
        values = dict(part.split("=", 1) for part in rel.parts)
        if bureau is not None and values[BUREAU] != bureau:
            continue
        if values[BUREAU] not in clean:  # the matrix counts duplicates cheaply: skip clean bureaus
            clean[values[BUREAU]] = _no_duplicates(mart, values[BUREAU])
        if clean[values[BUREAU]]:
            continue
        files = mart.files(READINGS, [values[BUREAU]], [values[MONTH]])
        if not files:
            continue
        frames.append(
            mart.sql(f"""
            SELECT cons_no AS entity, 'customer' AS entity_kind, '{check}' AS "check", date,
                   date AS "end", any_value(month) AS month,
                   printf('同日 %d 条读数 / %d readings on one day', count(*), count(*)) AS detail,
                   any_value(bureau) AS bureau
            FROM ({mart.scan_sql(READINGS, files)}) GROUP BY cons_no, date HAVING count(*) > 1""")
        )
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=HIT_COLUMNS)


def _no_duplicates(mart: Mart, bureau: str) -> bool:
    """Whether the bureau's readings of its customers have no repeated (customer, day)."""
    matrix = _bureau_matrix(mart, bureau)
    if matrix is None:
        return False  # cannot tell without customers: check every partition
    return matrix.duplicates == 0 and matrix.orphans == 0


def _bureau_matrix(mart: Mart, bureau: str) -> ConsumptionMatrix | None:
    """The bureau's customers × days matrix over the span of its readings; ``None`` without
    customers or readings."""
    if not mart.has_table("customers") or not mart.files("customers", [bureau]):
        return None
    span = mart.sql(
        "SELECT min(date) AS d0, max(date) AS d1 FROM readings WHERE bureau = ?", [bureau]
    )
    if span.d0.isna().iloc[0]:
        return None
    return build_matrix(mart, bureau, span.d0.iloc[0], span.d1.iloc[0])


def _absurd(
    mart: Mart, check: str, bureau: str | None, p: dict[str, float], built: BuiltMatrix | None
) -> pd.DataFrame:
    """Absurd daily readings (:mod:`audit_lib.data.absurd`) of the bureau's customers, on
    their customers × days matrix: the caller's when it covers every reading (its record of
    the days it cleared, when it did), else one built here. A day read twice is judged by
    the matrix's value, the largest of its readings (the duplicate check reports it)."""
    frames = []
    for code in [bureau] if bureau else mart.bureau_codes():
        covered = covering(mart, code, built)
        matrix = covered.built.matrix if covered is not None else _bureau_matrix(mart, code)
        if matrix is None:
            continue
        # positions in the whole matrix (a covering one has no reading outside its view)
        if matrix.absurd is not None:
            cells, values = matrix.absurd
        else:
            cells = absurd.absurd_cells(matrix.values, *absurd.RULE)
            values = matrix.values[np.divmod(cells, matrix.shape[1])]
        if not len(cells):
            continue
        row, day = np.divmod(cells, matrix.shape[1])
        cons, dates = matrix.cons_no, matrix.dates
        kwh = pd.Series(values).map("{:,.0f}".format)
        date = pd.Series(dates[day])
        frames.append(
            pd.DataFrame(
                {
                    "entity": cons[row],
                    "entity_kind": "customer",
                    "check": check,
                    "date": date,
                    "end": date,
                    "month": date.dt.strftime("%Y-%m"),
                    "detail": "日电量异常偏大 "
                    + kwh
                    + " kWh（疑数据错误） / absurd daily kWh "
                    + kwh
                    + " (data error?)",
                    "bureau": code,
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=HIT_COLUMNS)


# a meter replaced during the month (换表) legitimately breaks the register sequence of its bill
_NO_METER_CHANGE = """NOT EXISTS (
    SELECT 1 FROM meters mt WHERE mt.cons_no = b.cons_no
      AND (strftime(mt.remove_date, '%Y-%m') = b.month OR strftime(mt.install_date, '%Y-%m') = b.month))"""


def _backwards(check: str, p: dict[str, float]) -> str:
    return f"""
    SELECT cons_no AS entity, 'customer' AS entity_kind, '{check}' AS "check",
           NULL::DATE AS date, NULL::DATE AS "end", month,
           printf('止度 %.2f 小于起度 %.2f / end register below start', end_reg, start_reg)
             AS detail, bureau
    FROM bills b WHERE {_bureau("b")} AND end_reg < start_reg AND {_NO_METER_CHANGE}"""


def _bill_kwh(check: str, p: dict[str, float]) -> str:
    return f"""
    SELECT cons_no AS entity, 'customer' AS entity_kind, '{check}' AS "check",
           NULL::DATE AS date, NULL::DATE AS "end", month,
           printf('计费电量 %.1f ≠ (止度−起度)×倍率 %.1f / billed kWh ≠ register × multiplier',
                  kwh, (end_reg - start_reg) * multiplier) AS detail, bureau
    FROM bills b
    WHERE {_bureau("b")} AND end_reg IS NOT NULL AND start_reg IS NOT NULL AND {_NO_METER_CHANGE}
      AND abs(kwh - (end_reg - start_reg) * multiplier)
          > greatest({p["kwh_abs_tol"]}, {p["kwh_rel_tol"]} * abs(kwh))"""


_MONTH_DAY = "strptime(t.month || '-01', '%Y-%m-%d')::DATE"
# the days an entity's orphan rows cover: readings and supply by day, bills by month, the
# master tables (meters, customers) have none
_ORPHAN_DAYS = {
    "readings": ("min(t.date)", "max(t.date)"),
    "area_supply": ("min(t.date)", "max(t.date)"),
    "bills": (f"min({_MONTH_DAY})", f"last_day(max({_MONTH_DAY}))"),
}


def _orphans(check: str, p: dict[str, float], readings: str = "readings") -> str:
    """Rows whose key is in no row of its master table, grouped per key and table.

    ``readings`` names the relation read for the readings table (a covering matrix's stray
    rows, see :func:`~audit_lib.data.quality_matrix.stray_readings`); the other tables are
    read whole.
    """
    sources = {"readings": readings}
    parts = []
    for table, col, ref, ref_col, kind in (
        ("readings", "cons_no", "customers", "cons_no", "customer"),
        ("bills", "cons_no", "customers", "cons_no", "customer"),
        ("meters", "cons_no", "customers", "cons_no", "customer"),
        ("customers", "area_id", "areas", "area_id", "area"),
        ("area_supply", "area_id", "areas", "area_id", "area"),
    ):
        first, last = _ORPHAN_DAYS.get(table, ("NULL::DATE", "NULL::DATE"))
        parts.append(f"""
        SELECT t.{col} AS entity, '{kind}' AS entity_kind, '{check}' AS "check",
               {first} AS date, {last} AS "end", strftime({first}, '%Y-%m') AS month,
               printf('%s 中 %d 行的 {col} 不在 {ref} 中 / %d {table} rows not in {ref}',
                      '{table}', count(*), count(*)) AS detail,
               any_value(t.bureau) AS bureau
        FROM {sources.get(table, table)} t ANTI JOIN {ref} r ON t.{col} = r.{ref_col}
        WHERE {_bureau("t")} GROUP BY t.{col}""")
    return " UNION ALL ".join(parts)


def _codes(check: str, p: dict[str, float]) -> str:
    parts = []
    for table, col, allowed, entity in (
        ("customers", "cust_class", _in(CUSTOMER_CLASSES), "cons_no"),
        ("customers", "status", _in(CUSTOMER_STATUSES), "cons_no"),
        ("customers", "tariff_code", "(SELECT tariff_code FROM tariffs)", "cons_no"),
        ("bills", "tariff_code", "(SELECT tariff_code FROM tariffs)", "cons_no"),
        ("meter_events", "code", _in(METER_EVENT_CODES), "cons_no"),
        ("tickets", "kind", _in(TICKET_KINDS), "ticket_id"),
    ):
        month = "month" if table in ("bills", "meter_events", "tickets") else "NULL::VARCHAR"
        parts.append(f"""
        SELECT {entity} AS entity, '{"ticket" if entity == "ticket_id" else "customer"}'
               AS entity_kind, '{check}' AS "check", NULL::DATE AS date, NULL::DATE AS "end",
               {month} AS month,
               printf('{table}.{col} = %s 不在代码表中 / not in its code list',
                      coalesce({col}, 'NULL')) AS detail, bureau
        FROM {table} WHERE {_bureau()} AND ({col} IS NULL OR {col} NOT IN {allowed})""")
    return " UNION ALL ".join(parts)


SOURCE_CHECK = ("source_mismatch", "与源系统不符", "differs from the source system")
"""The reconciliation with the source system (:mod:`audit_lib.data.reconcile`): its check
name and labels, listed by :func:`summarize` beside the checks of :data:`CHECKS`."""

CHECKS: dict[str, Check] = {
    c.name: c
    for c in (
        Check("missing_readings", "读数缺失", "missing readings", ("readings", "customers"),
              run=lambda m, b, p, g: _missing(m, "missing_readings", b, p, g)),
        Check("missing_supply", "台区供电量缺失", "missing station-area supply",
              ("area_supply", "areas"), _missing_supply),
        Check("negative_readings", "负电量", "negative kWh", ("readings",), _negative,
              readings=negative_readings),
        Check("absurd_readings", "读数异常偏大", "absurd kWh", ("readings", "customers"),
              run=lambda m, b, p, g: _absurd(m, "absurd_readings", b, p, g)),
        Check("duplicate_readings", "重复读数", "duplicated readings", ("readings",),
              run=lambda m, b, p, g: _duplicate(m, "duplicate_readings", b, p, g)),
        Check("register_backwards", "示数倒走", "register going backwards",
              ("bills", "meters"), _backwards),
        Check("bill_kwh_mismatch", "电量与示数不符", "billed kWh ≠ register × multiplier",
              ("bills", "meters"), _bill_kwh),
        Check("orphans", "孤立记录", "orphan rows",
              ("readings", "bills", "meters", "customers", "area_supply", "areas"), _orphans,
              readings=stray_readings),
        Check("bad_codes", "代码越界", "codes outside their code lists",
              ("customers", "bills", "meter_events", "tickets", "tariffs"), _codes),
    )
}  # fmt: skip

DEFAULTS: dict[str, float] = {
    "min_missing_days": 3,  # a customer's run of missed days; 1–2 are routine collection misses
    "min_missing_supply_days": 1,  # a station area's supply: any missed day
    "kwh_abs_tol": 1.0,
    "kwh_rel_tol": 0.001,
}


def run_check(
    mart: Mart,
    name: str,
    bureau: str | None = None,
    *,
    built: BuiltMatrix | None = None,
    **params: float,
) -> pd.DataFrame:
    """Run one check; returns its hits (empty when the mart lacks a table it needs).

    ``built`` is the bureau's matrix if one is already built (see :func:`run_checks`).
    """
    if name not in CHECKS:
        raise ConfigError(f"unknown data-quality check {name!r}; known: {', '.join(CHECKS)}")
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f"unknown check parameter {sorted(unknown)[0]!r}")
    check = CHECKS[name]
    if not all(mart.has_table(t) for t in check.tables):
        return pd.DataFrame(columns=HIT_COLUMNS)
    if check.run is not None:
        hits = check.run(mart, bureau, {**DEFAULTS, **params}, built)
        return hits.sort_values(["entity", "date"], ignore_index=True)[HIT_COLUMNS]
    assert check.query is not None
    covered = covering(mart, bureau, built) if check.readings is not None else None
    rows = check.readings(covered, covered.built.bureau) if check.readings and covered else None
    cur = mart.con.cursor()
    try:
        if rows is None:
            sql = check.query(name, {**DEFAULTS, **params})
        else:
            cur.register(_READINGS_VIEW, rows)
            sql = check.query(name, {**DEFAULTS, **params}, readings=_READINGS_VIEW)
        query = cur.sql(f"SELECT * FROM ({sql}) ORDER BY ALL", params={"bureau": bureau})
        frame = arrow_frame(query.to_arrow_table())
    finally:
        cur.close()
    return frame[HIT_COLUMNS]


_READINGS_VIEW = "_dq_readings"


def run_checks(
    mart: Mart,
    bureau: str | None = None,
    checks: Iterable[str] | None = None,
    *,
    built: BuiltMatrix | None = None,
    **params: float,
) -> pd.DataFrame:
    """Run several checks (default: all) and concatenate their hits.

    ``built`` is the bureau's matrix when the caller has one (a detection context's): if it
    holds every reading of the bureau, the missing and duplicate checks read it (same hits)
    instead of building another matrix and grouping every reading.
    """
    frames = [run_check(mart, name, bureau, built=built, **params) for name in (checks or CHECKS)]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=HIT_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def hits_in_period(hits: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    """The hits that concern ``start``..``end`` (inclusive).

    A hit with days is kept when its days (``date`` to ``end``, or the one ``date``) overlap
    the period, a hit with only a month when that month is one of the period's, and a hit
    with neither (a master-data fault such as a customer's bad code) always: it holds
    whatever the period.
    """
    first = pd.to_datetime(hits["date"])
    last = pd.to_datetime(hits["end"]).fillna(first)
    month = hits["month"].astype("string")
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    by_days = first.notna() & (first <= hi) & (last >= lo)
    by_month = first.isna() & month.between(lo.strftime("%Y-%m"), hi.strftime("%Y-%m"))
    timeless = first.isna() & month.isna()
    keep = by_days | by_month.fillna(False) | timeless
    return hits[keep.to_numpy(dtype=bool)].reset_index(drop=True)


def summarize(hits: pd.DataFrame, *, reconciled: bool = False) -> pd.DataFrame:
    """Hits per check (every check listed, zero included), with Chinese and English names;
    ``reconciled`` adds the reconciliation with the source (:mod:`audit_lib.data.reconcile`)."""
    counts = hits.groupby("check").size() if len(hits) else pd.Series(dtype="int64")
    labels = [(c.name, c.name_zh, c.name_en) for c in CHECKS.values()]
    return pd.DataFrame(
        [
            (*c, int(counts.get(c[0], 0)))
            for c in [*labels, *([SOURCE_CHECK] if reconciled else [])]
        ],
        columns=["check", "name_zh", "name_en", "hits"],
    )
