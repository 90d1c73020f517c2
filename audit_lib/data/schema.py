"""The data contract: tables, columns, types, code lists and partitioning of the mart.

Every module that reads or writes marketing data names columns through this module, so a
column is spelled in exactly one place. The tables follow the marketing side of an SG186-like
system (see ``docs`` and DESIGN.md): organisation, customers, meters, daily AMI readings, daily
station-area supply, monthly bills, payments, tariffs, 95598 tickets and meter events.

Mart layout (hive-style Parquet, queried with DuckDB)::

    <mart>/<table>/bureau=<code>/month=<YYYY-MM>/part-*.parquet   # monthly tables
    <mart>/<table>/bureau=<code>/part-*.parquet                   # per-bureau tables
    <mart>/<table>/part-*.parquet                                 # city-wide tables

``bureau`` and ``month`` are partition keys: they live in the directory names, not in the
files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

# --------------------------------------------------------------------------- columns
CONS_NO = "cons_no"  # customer number (户号), a string of digits
BUREAU = "bureau"  # supply bureau code (区供电局), e.g. "YZ"
STATION = "station_id"  # supply station (供电所)
AREA = "area_id"  # station area (台区) = the customers behind one transformer
DATE = "date"
MONTH = "month"  # "YYYY-MM"
KWH = "kwh"

Partitioning = Literal["city", "bureau", "bureau_month"]


@dataclass(frozen=True)
class Column:
    """One column of a table: name, Arrow type, whether nulls are allowed, meaning."""

    name: str
    type: pa.DataType
    nullable: bool = False
    doc: str = ""


@dataclass(frozen=True)
class Table:
    """A table of the mart and of the source system.

    Attributes
    ----------
    name
        Table name (also the mart folder name).
    columns
        Data columns, in order. Partition columns are included: ``bureau`` and ``month``.
    key
        Columns that identify a row; duplicates on the key are rejected on ingest.
    partitioning
        ``city`` (no partition), ``bureau`` or ``bureau_month``.
    date_column
        The column whose value decides the ``month`` partition (``bureau_month`` only).
    """

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    partitioning: Partitioning
    date_column: str | None = None
    doc: str = ""

    @property
    def names(self) -> list[str]:
        """Column names in order."""
        return [c.name for c in self.columns]

    @property
    def partition_columns(self) -> list[str]:
        """Columns stored in directory names rather than in the files."""
        return {"city": [], "bureau": [BUREAU], "bureau_month": [BUREAU, MONTH]}[self.partitioning]

    @property
    def file_columns(self) -> list[str]:
        """Columns stored inside the Parquet files."""
        return [n for n in self.names if n not in self.partition_columns]

    def arrow_schema(self, *, with_partitions: bool = True) -> pa.Schema:
        """The Arrow schema of the table (optionally without partition columns)."""
        keep = self.names if with_partitions else self.file_columns
        return pa.schema(
            [pa.field(c.name, c.type, nullable=c.nullable) for c in self.columns if c.name in keep]
        )

    def column(self, name: str) -> Column:
        """Look up a column by name."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name} has no column {name!r}")


def _c(name: str, typ: pa.DataType, nullable: bool = False, doc: str = "") -> Column:
    return Column(name, typ, nullable, doc)


STR = pa.string()
F32 = pa.float32()
F64 = pa.float64()
I32 = pa.int32()
D32 = pa.date32()
TS = pa.timestamp("s")

# --------------------------------------------------------------------------- organisation
BUREAUS = Table(
    "bureaus",
    (
        _c(BUREAU, STR, doc="bureau code"),
        _c("name_zh", STR, doc="Chinese name, e.g. 渝中"),
        _c("name_en", STR, doc="English name, e.g. Yuzhong"),
    ),
    key=(BUREAU,),
    partitioning="city",
)

STATIONS = Table(
    "stations",
    (
        _c(STATION, STR),
        _c("name_zh", STR),
        _c(BUREAU, STR),
    ),
    key=(STATION,),
    partitioning="bureau",
)

AREAS = Table(
    "areas",
    (
        _c(AREA, STR),
        _c(STATION, STR),
        _c("transformer_kva", F64, doc="distribution transformer rating"),
        _c("kind", STR, doc="public (公变) or dedicated (专变)"),
        _c(BUREAU, STR),
    ),
    key=(AREA,),
    partitioning="bureau",
)

# --------------------------------------------------------------------------- customers & meters
CUSTOMER_CLASSES = ("residential", "commercial", "industrial", "agricultural")
CLASS_NAMES_ZH = {
    "residential": "居民",
    "commercial": "一般工商业",
    "industrial": "工业",
    "agricultural": "农业",
}
CUSTOMER_STATUSES = ("active", "closed")  # 正常 / 销户; vacancy is a consumption fact, not a status

CUSTOMERS = Table(
    "customers",
    (
        _c(CONS_NO, STR),
        _c("name", STR, doc="customer name (personal data: masked for most roles)"),
        _c("phone", STR, nullable=True, doc="personal data"),
        _c("id_no", STR, nullable=True, doc="ID card / licence number (personal data)"),
        _c(STATION, STR),
        _c(AREA, STR),
        _c("cust_class", STR, doc="one of CUSTOMER_CLASSES"),
        _c("industry", STR, doc="industry code (行业分类), e.g. 'urban_household'"),
        _c("tariff_code", STR, doc="tariff applied, see TARIFFS"),
        _c("voltage_kv", F64, doc="supply voltage, 0.22 / 0.38 / 10 / 35 / 110"),
        _c("capacity_kva", F64, doc="contracted capacity (合同容量)"),
        _c("status", STR, doc="one of CUSTOMER_STATUSES"),
        _c("open_date", D32),
        _c("close_date", D32, nullable=True),
        _c(BUREAU, STR),
    ),
    key=(CONS_NO,),
    partitioning="bureau",
)

METERS = Table(
    "meters",
    (
        _c("meter_id", STR),
        _c(CONS_NO, STR),
        _c("multiplier", F64, doc="倍率 = CT ratio × PT ratio as recorded in the system"),
        _c("install_date", D32),
        _c("remove_date", D32, nullable=True, doc="set when the meter was replaced"),
        _c(BUREAU, STR),
    ),
    key=("meter_id",),
    partitioning="bureau",
)

# --------------------------------------------------------------------------- daily facts
READINGS = Table(
    "readings",
    (
        _c(CONS_NO, STR),
        _c(DATE, D32),
        _c(KWH, F32, nullable=True, doc="daily kWh after multiplier; null = not collected"),
        _c(BUREAU, STR),
        _c(MONTH, STR),
    ),
    key=(CONS_NO, DATE),
    partitioning="bureau_month",
    date_column=DATE,
    doc="AMI daily consumption (用电信息采集)",
)

AREA_SUPPLY = Table(
    "area_supply",
    (
        _c(AREA, STR),
        _c(DATE, D32),
        _c("supply_kwh", F64, nullable=True, doc="kWh through the area's transformer meter"),
        _c(BUREAU, STR),
        _c(MONTH, STR),
    ),
    key=(AREA, DATE),
    partitioning="bureau_month",
    date_column=DATE,
    doc="station-area (台区) supply, the transformer's own meter",
)

# --------------------------------------------------------------------------- monthly facts
BILLS = Table(
    "bills",
    (
        _c(CONS_NO, STR),
        _c("start_reg", F64, nullable=True, doc="register index at month start (起度)"),
        _c("end_reg", F64, nullable=True, doc="register index at month end (止度)"),
        _c("multiplier", F64, doc="倍率 used for this bill"),
        _c(KWH, F64, doc="billed kWh"),
        _c("max_demand_kw", F64, nullable=True, doc="monthly maximum demand (最大需量)"),
        _c("tariff_code", STR),
        _c("energy_charge", F64, doc="kWh charge, 元"),
        _c("capacity_charge", F64, doc="basic (capacity) charge for two-part tariffs, 元"),
        _c("amount", F64, doc="billed total, 元"),
        _c(BUREAU, STR),
        _c(MONTH, STR),
    ),
    key=(CONS_NO, MONTH),
    partitioning="bureau_month",
)

PAYMENTS = Table(
    "payments",
    (
        _c("payment_id", STR),
        _c(CONS_NO, STR),
        _c("amount", F64, doc="元 paid"),
        _c("paid_date", D32),
        _c("due_date", D32, doc="the bill's due date"),
        _c(BUREAU, STR),
        _c(MONTH, STR, doc="the billing month this payment settles"),
    ),
    key=("payment_id",),
    partitioning="bureau_month",
)

TARIFF_KINDS = ("tiered", "flat", "tou", "two_part")

TARIFFS = Table(
    "tariffs",
    (
        _c("tariff_code", STR),
        _c("name_zh", STR),
        _c("name_en", STR),
        _c("kind", STR, doc="one of TARIFF_KINDS"),
        _c("classes", STR, doc="comma-separated customer classes the tariff is valid for"),
        _c("price", F64, doc="元/kWh (first tier for tiered tariffs)"),
        _c("tier2_kwh", F64, nullable=True, doc="monthly kWh where tier 2 starts"),
        _c("tier2_price", F64, nullable=True),
        _c("tier3_kwh", F64, nullable=True),
        _c("tier3_price", F64, nullable=True),
        _c("capacity_price", F64, nullable=True, doc="元/kVA·month for two-part tariffs"),
        _c("valid_from", D32),
        _c("valid_to", D32, nullable=True),
    ),
    key=("tariff_code", "valid_from"),
    partitioning="city",
)

TICKET_KINDS = ("complaint", "fault", "enquiry", "theft_report", "opinion")

TICKETS = Table(
    "tickets",
    (
        _c("ticket_id", STR),
        _c(CONS_NO, STR, nullable=True),
        _c(AREA, STR, nullable=True),
        _c("kind", STR, doc="one of TICKET_KINDS"),
        _c("opened", TS),
        _c("closed", TS, nullable=True),
        _c("topic", STR, nullable=True, doc="short subject, e.g. 'billing', 'outage'"),
        _c(BUREAU, STR),
        _c(MONTH, STR),
    ),
    key=("ticket_id",),
    partitioning="bureau_month",
    doc="95598 customer-service tickets",
)

METER_EVENT_CODES = {
    "ERC17": ("电压电流不平衡", "voltage/current imbalance"),
    "ERC27": ("电能表示度下降", "register going backwards"),
    "ERC28": ("电能量超差", "energy over tolerance"),
    "ERC29": ("电能表飞走", "meter running fast"),
    "ERC30": ("电能表停走", "meter stopped"),
    "ERC31": ("抄表失败", "reading failure"),
    "ERC37": ("开表盖", "meter cover opened"),
}

METER_EVENTS = Table(
    "meter_events",
    (
        _c("event_id", STR),
        _c(CONS_NO, STR),
        _c("meter_id", STR),
        _c("time", TS),
        _c("code", STR, doc="one of METER_EVENT_CODES"),
        _c(BUREAU, STR),
        _c(MONTH, STR),
    ),
    key=("event_id",),
    partitioning="bureau_month",
    doc="collection terminal alarms",
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        BUREAUS,
        STATIONS,
        AREAS,
        CUSTOMERS,
        METERS,
        READINGS,
        AREA_SUPPLY,
        BILLS,
        PAYMENTS,
        TARIFFS,
        TICKETS,
        METER_EVENTS,
    )
}

# --------------------------------------------------------------------------- truth table
# Written beside generated data; never part of the mart the detectors read.
TRUTH_KINDS = (
    # theft patterns (窃电)
    "theft_constant_fraction",
    "theft_random_fraction",
    "theft_onoff_bypass",
    "theft_flattened",
    "theft_capped",
    # rule themes
    "zero_while_active",
    "tariff_invalid_for_class",
    "bill_amount_mismatch",
    "wrong_multiplier",
    "multiplier_not_updated",
    "over_capacity",
    "arrears",
    "repeated_complaints",
    # data quality (数据质量)
    "dq_missing_readings",
    "dq_negative_reading",
    "dq_duplicate_reading",
    "dq_register_backwards",
    "dq_orphan",
    "dq_bad_code",
    "dq_absurd_reading",
    # legitimate changes that must NOT be flagged as theft
    "legit_vacancy",
    "legit_move_out",
    "legit_move_in",
    "legit_meter_replacement",
)

THEFT_KINDS = tuple(k for k in TRUTH_KINDS if k.startswith("theft_"))
DQ_KINDS = tuple(k for k in TRUTH_KINDS if k.startswith("dq_"))
LEGIT_KINDS = tuple(k for k in TRUTH_KINDS if k.startswith("legit_"))

TRUTH = Table(
    "truth",
    (
        _c("entity", STR, doc="cons_no, or area_id for area-level kinds"),
        _c("entity_kind", STR, doc="customer or area"),
        _c("kind", STR, doc="one of TRUTH_KINDS"),
        _c("start", D32),
        _c("end", D32),
        _c("severity", F64, doc="size of the effect, e.g. fraction stolen, 0..1"),
        _c(BUREAU, STR),
        _c("detail", STR, nullable=True, doc="free text, e.g. the true multiplier"),
    ),
    key=("entity", "kind", "start"),
    partitioning="city",
)

# --------------------------------------------------------------------------- findings
# The hand-over between detection and tasks: detectors write these rows, the task layer
# reads them as a frame (it never imports audit_lib.detect).
SEVERITIES = ("low", "medium", "high")

FINDINGS = Table(
    "findings",
    (
        _c("finding_id", STR, doc="deterministic: hash of theme, entity and period"),
        _c("theme_id", STR, doc="e.g. 'theft_suspicion', 'zero_consumption'"),
        _c("theme_version", I32),
        _c("entity", STR, doc="cons_no, or area_id for area-level themes"),
        _c("entity_kind", STR, doc="customer or area"),
        _c(STATION, STR, nullable=True),
        _c(AREA, STR, nullable=True),
        _c("period_start", D32),
        _c("period_end", D32),
        _c("score", F64, doc="higher = more suspicious; comparable within a theme"),
        _c("severity", STR, doc="one of SEVERITIES"),
        _c(
            "deadline_days",
            I32,
            nullable=True,
            doc="days a task this finding raises may take from being raised to its archive",
        ),
        _c("kwh_at_risk", F64, nullable=True),
        _c("money_at_risk", F64, nullable=True, doc="元, kWh × applicable price, where estimable"),
        _c("reason_zh", STR, doc="one line a reviewer can read, in Chinese"),
        _c("reason_en", STR, doc="the same line in English"),
        _c("evidence", STR, doc="JSON object: the numbers that fired, the window, parameters"),
        _c("run_id", STR, nullable=True, doc="the run that raised it"),
        _c("notebook", STR, nullable=True, doc="path of the executed notebook (evidence link)"),
        _c(BUREAU, STR),
    ),
    key=("finding_id",),
    partitioning="bureau",
)
