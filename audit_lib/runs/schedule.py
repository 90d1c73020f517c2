"""``parameters/schedule.yml``: which notebook runs for which bureaus, when, for which period.

::

    timezone: Asia/Shanghai      # cron expressions are read in this time zone
    grace_minutes: 60            # a slot missed by less than this still runs (restart, cron)
    entries:
      - name: monitoring-daily
        notebook: notebooks/monitoring.ipynb
        bureaus: all             # or [YZ, JB]
        cron: "30 6 * * *"       # croniter syntax; a 6th field gives seconds
        period: previous_day     # a rule below, or a literal period such as 2025-01
        workers: 2
        timeout: 1800            # per-cell timeout, seconds (default 3600; 0: none)
        mart: demo/mart          # optional: data mart, fingerprinted in every manifest
        parameters: {}           # extra notebook parameters for every bureau

Period rules, relative to the slot's local date: ``previous_day`` (``2025-01-31``),
``previous_week`` (``2025-01-20..2025-01-26``, Monday to Sunday), ``previous_month``
(``2024-12``), ``current_month`` (``2025-01``), ``trailing_12_months`` (``2024-02..2025-01``),
``trailing_<N>_days`` (``trailing_30_days``: ``2025-01-02..2025-01-31``, ending the day before).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from audit_lib.errors import ConfigError
from audit_lib.runs.params import read_yaml

SCHEDULE_FILE = Path("parameters") / "schedule.yml"
ENTRY_KEYS = frozenset(
    {
        "name",
        "notebook",
        "bureaus",
        "cron",
        "period",
        "workers",
        "timeout",
        "parameters",
        "cluster",
        "mart",
    }
)
DEFAULT_TIMEOUT = 3600.0
LITERAL_PERIOD = re.compile(r"\d{4}-\d{2}(-\d{2})?(\.\.\d{4}-\d{2}(-\d{2})?)?")
TRAILING_DAYS = re.compile(r"trailing_([1-9][0-9]{0,3})_days")
PERIOD_RULES = (
    "previous_day",
    "previous_week",
    "previous_month",
    "current_month",
    "trailing_12_months",
    "trailing_<N>_days",
)


@dataclass(frozen=True)
class ScheduleEntry:
    """One line of the schedule."""

    name: str
    notebook: str
    cron: str
    period: str
    bureaus: str | tuple[str, ...] = "all"
    workers: int = 2
    timeout: float | None = None
    cluster: str | None = None
    mart: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Schedule:
    """The whole schedule file."""

    entries: tuple[ScheduleEntry, ...]
    timezone: ZoneInfo
    grace: timedelta
    source: str = "<memory>"


def _month(d: date, shift: int) -> str:
    index = d.year * 12 + d.month - 1 + shift
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def resolve_period(rule: str, slot_local: datetime) -> str:
    """The period string a slot runs for (see the module docstring)."""
    day = slot_local.date()
    if rule == "previous_day":
        return (day - timedelta(days=1)).isoformat()
    if rule == "previous_week":
        monday = day - timedelta(days=day.weekday() + 7)
        return f"{monday.isoformat()}..{(monday + timedelta(days=6)).isoformat()}"
    if rule == "previous_month":
        return _month(day, -1)
    if rule == "current_month":
        return _month(day, 0)
    if rule == "trailing_12_months":
        return f"{_month(day, -12)}..{_month(day, -1)}"
    trailing = TRAILING_DAYS.fullmatch(rule)
    if trailing:
        last = day - timedelta(days=1)
        first = last - timedelta(days=int(trailing.group(1)) - 1)
        return f"{first.isoformat()}..{last.isoformat()}"
    return rule


def _entry(raw: Any, index: int, source: str) -> ScheduleEntry:
    where = f"{source}: entries[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping")
    unknown = sorted(set(raw) - ENTRY_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (allowed: {sorted(ENTRY_KEYS)})")
    for key in ("name", "notebook", "cron", "period"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise ConfigError(f"{where}: key {key!r} must be a non-empty string")
    period = raw["period"]
    if period not in PERIOD_RULES and not (
        TRAILING_DAYS.fullmatch(period) or LITERAL_PERIOD.fullmatch(period)
    ):
        raise ConfigError(
            f"{where}: key 'period' is neither a rule ({', '.join(PERIOD_RULES)}) nor a "
            f"period such as 2025-01 or 2025-01-01..2025-01-31: {period!r}"
        )
    if not croniter.is_valid(raw["cron"]):
        raise ConfigError(f"{where}: key 'cron' is not a valid cron expression: {raw['cron']!r}")
    bureaus = raw.get("bureaus", "all")
    if isinstance(bureaus, list) and all(isinstance(b, str) for b in bureaus) and bureaus:
        bureaus = tuple(bureaus)
    elif not isinstance(bureaus, str):
        raise ConfigError(f"{where}: key 'bureaus' must be 'all', 'B1,B2' or a list of codes")
    workers = raw.get("workers", 2)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ConfigError(f"{where}: key 'workers' must be a positive integer")
    timeout = raw.get("timeout", DEFAULT_TIMEOUT)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout < 0:
        raise ConfigError(f"{where}: key 'timeout' must be a number of seconds ≥ 0 (0: none)")
    if raw.get("mart") is not None and not isinstance(raw["mart"], str):
        raise ConfigError(f"{where}: key 'mart' must be a folder path")
    parameters = raw.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ConfigError(f"{where}: key 'parameters' must be a mapping")
    return ScheduleEntry(
        name=raw["name"],
        notebook=raw["notebook"],
        cron=raw["cron"],
        period=raw["period"],
        bureaus=bureaus,
        workers=workers,
        timeout=float(timeout) or None,
        cluster=raw.get("cluster"),
        mart=raw.get("mart"),
        parameters=dict(parameters),
    )


def load_schedule(path: Path | str = SCHEDULE_FILE) -> Schedule:
    """Read and check ``schedule.yml``.

    Raises
    ------
    ConfigError
        Naming the file and the entry/key that is wrong.
    """
    source = str(path)
    data = read_yaml(Path(path))
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise ConfigError(f"{source}: expected a mapping with a list 'entries'")
    unknown = sorted(set(data) - {"timezone", "grace_minutes", "entries"})
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}")
    try:
        tz = ZoneInfo(str(data.get("timezone", "Asia/Shanghai")))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"{source}: key 'timezone' is not a known time zone") from exc
    grace = data.get("grace_minutes", 60)
    if not isinstance(grace, int | float) or grace < 0:
        raise ConfigError(f"{source}: key 'grace_minutes' must be a number ≥ 0")
    entries = tuple(_entry(raw, i, source) for i, raw in enumerate(data["entries"]))
    names = [e.name for e in entries]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise ConfigError(f"{source}: entry name {duplicate!r} is used twice")
    return Schedule(entries, tz, timedelta(minutes=float(grace)), source)


def latest_slot(entry: ScheduleEntry, now: datetime, tz: ZoneInfo) -> datetime:
    """The entry's most recent firing time at or before ``now`` (aware, in ``tz``)."""
    local = now.astimezone(tz)
    itr = croniter(entry.cron, local + timedelta(microseconds=1))
    prev: datetime = itr.get_prev(datetime)
    return prev


def next_slot(entry: ScheduleEntry, now: datetime, tz: ZoneInfo) -> datetime:
    """The entry's next firing time after ``now`` (aware, in ``tz``)."""
    nxt: datetime = croniter(entry.cron, now.astimezone(tz)).get_next(datetime)
    return nxt
