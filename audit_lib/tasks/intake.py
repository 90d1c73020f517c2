"""From findings to tasks (发现问题 → 稽查任务), in bulk and idempotently.

Which task a finding goes to (the rule, in this order):

1. A finding already stored (same ``finding_id``, unique in ``task_findings``) is skipped:
   re-submitting findings creates and changes nothing.
2. If its entity (``entity_kind`` + ``entity``) already has an **open** task (any state but
   archived or cancelled) of the same bureau, the finding is linked to that task — whatever
   the finding's period. Daily monitoring therefore adds each day's evidence to the
   customer's open task instead of opening a task per customer per day. With several open
   tasks (older data), the one with the latest period start (then the highest id) is used.
3. Otherwise, if a task with the finding's ``task_key`` (``kind|entity|start|end``, unique in
   the database) exists — a closed task of the same period — the finding is linked to it.
4. Otherwise the findings of one entity and period in the batch become one new task
   (state ``new``); its priority is score × money at risk, and its time limit (限时稽查,
   ``deadline_at``) is the strictest ``deadline_days`` of its findings (each theme's, carried
   in the findings frame) from the moment it is raised. Once the entity's task is archived
   or cancelled, the next period's findings open a new task.

A task that gets new findings is brought up to date in SQL, in bulk, from all its linked
findings: ``n_findings``, themes, score (max), money and kWh at risk (sums), priority,
severity (highest) and title; its ``version`` is incremented (an open form on it becomes
stale) and a ``link_findings`` event is logged. A task keeps the period and the time limit it was opened with.
Everything happens in the caller's transaction: a batch is wholly there or wholly absent.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from audit_lib.data.schema import FINDINGS, SEVERITIES
from audit_lib.errors import DataError, PermissionDenied, SchemaError
from audit_lib.tasks.auditlog import EventIn, append_events
from audit_lib.tasks.bulk import copy_frame, table_of
from audit_lib.tasks.deadlines import DeadlinePolicy
from audit_lib.tasks.machine import FINAL_STATES
from audit_lib.tasks.models import Task, TaskFinding, User, utcnow

CHUNK = 5_000
TASK_COLUMNS = [
    "task_key",
    "entity",
    "entity_kind",
    "bureau",
    "station_id",
    "area_id",
    "period_start",
    "period_end",
    "themes",
    "n_findings",
    "score",
    "money_at_risk",
    "kwh_at_risk",
    "priority",
    "severity",
    "title_zh",
    "title_en",
    "run_id",
    "notebook",
]
FINDING_COLUMNS = [
    "finding_id",
    "theme_id",
    "theme_version",
    "score",
    "severity",
    "kwh_at_risk",
    "money_at_risk",
    "reason_zh",
    "reason_en",
    "evidence",
    "run_id",
    "notebook",
]
CREATE_ROLES = frozenset({"city_auditor", "bureau_auditor", "admin"})
COLUMNS = [c.name for c in FINDINGS.columns]
NOT_NULL = [c.name for c in FINDINGS.columns if not c.nullable]
Progress = Callable[[str, int, int], None]
UNIT = "\x1f"  # separator of values sent as one text (cannot occur in ids or keys)


@dataclass(frozen=True)
class IntakeResult:
    """What :func:`tasks_from_findings` did."""

    tasks_created: int
    findings_linked: int
    findings_skipped: int
    task_ids: list[int]


def validate_findings(findings: pd.DataFrame, source: str = "findings") -> pd.DataFrame:
    """Check columns, nulls, severities, periods and duplicates; return a normalised copy."""
    missing = [c for c in NOT_NULL if c not in findings.columns]
    if missing:
        raise SchemaError(f"findings lack columns {missing}", file=source, field=missing[0])
    df = findings.reindex(columns=COLUMNS).reset_index(drop=True)  # absent optional: empty
    for col in NOT_NULL:
        bad = np.flatnonzero(df[col].isna().to_numpy())
        if bad.size:
            raise DataError("required value is empty", file=source, field=col, row=int(bad[0]))
    for col in ("period_start", "period_end"):
        try:
            df[col] = pd.to_datetime(df[col]).dt.normalize()
        except (ValueError, TypeError) as exc:
            raise DataError(f"not a date: {exc}", file=source, field=col) from None
    bad = np.flatnonzero((df["period_end"] < df["period_start"]).to_numpy())
    if bad.size:
        raise DataError(
            "period_end before period_start", file=source, field="period_end", row=int(bad[0])
        )
    bad = np.flatnonzero(~df["severity"].isin(SEVERITIES).to_numpy())
    if bad.size:
        raise DataError(
            f"severity must be one of {SEVERITIES}", file=source, field="severity", row=int(bad[0])
        )
    dup = np.flatnonzero(df["finding_id"].duplicated().to_numpy())
    if dup.size:
        raise DataError("duplicate finding_id", file=source, field="finding_id", row=int(dup[0]))
    for col in ("score", "kwh_at_risk", "money_at_risk", "deadline_days"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    bad = np.flatnonzero((df["deadline_days"] <= 0).to_numpy())
    if bad.size:
        raise DataError("deadline_days must be > 0", file=source, field="deadline_days",
                        row=int(bad[0]))  # fmt: skip
    return df


def join_themes(codes: np.ndarray, themes: pd.Series, n_groups: int) -> np.ndarray:
    """Sorted, comma-joined distinct theme ids per group code (vectorised, no group loop)."""
    tcodes, names = pd.factorize(themes, sort=True)
    pair = np.unique(codes.astype(np.int64) * len(names) + tcodes)
    group, theme = pair // len(names), pair % len(names)
    starts = np.searchsorted(group, np.arange(n_groups))
    rank = np.arange(len(pair)) - starts[group]
    text = np.asarray(names, dtype=object)[theme]
    joined = np.empty(n_groups, dtype=object)
    first = rank == 0
    joined[group[first]] = text[first]
    for k in range(1, int(rank.max()) + 1 if len(rank) else 0):
        sel = rank == k
        joined[group[sel]] = joined[group[sel]] + "," + text[sel]
    return joined


def _day_text(col: pd.Series) -> pd.Series:
    codes, uniques = pd.factorize(col)
    text = pd.DatetimeIndex(uniques).strftime("%Y-%m-%d").to_numpy(dtype=object)
    return pd.Series(text[codes], index=col.index, dtype=object)


def task_keys(df: pd.DataFrame) -> pd.Series:
    """The task key of each finding: ``kind|entity|period_start|period_end``."""
    start, end = _day_text(df["period_start"]), _day_text(df["period_end"])
    return df["entity_kind"] + "|" + df["entity"].astype(str) + "|" + start + "|" + end


def group_findings(df: pd.DataFrame) -> pd.DataFrame:
    """One row per task (findings carry ``task_key``): key, scope, themes, priority, title."""
    codes, keys = pd.factorize(df["task_key"])
    n_groups = len(keys)
    sev = df["severity"].map({s: i for i, s in enumerate(SEVERITIES)}).to_numpy(dtype=np.int64)
    grouped = df.assign(_sev=sev).groupby(codes, sort=True)
    order = np.lexsort((-df["score"].to_numpy(dtype=np.float64), codes))
    lead = np.ones(len(order), dtype=bool)
    lead[1:] = codes[order][1:] != codes[order][:-1]
    cols = [
        "entity",
        "entity_kind",
        "bureau",
        "station_id",
        "area_id",
        "period_start",
        "period_end",
        "reason_zh",
        "reason_en",
        "run_id",
        "notebook",
    ]
    out = df.iloc[order[lead]][cols].reset_index(drop=True)
    out.insert(0, "task_key", np.asarray(keys, dtype=object))
    out["score"] = grouped["score"].max().to_numpy()
    out["money_at_risk"] = grouped["money_at_risk"].sum(min_count=1).fillna(0.0).to_numpy()
    out["kwh_at_risk"] = grouped["kwh_at_risk"].sum(min_count=1).fillna(0.0).to_numpy()
    out["n_findings"] = grouped.size().to_numpy()
    out["deadline_days"] = grouped["deadline_days"].min().to_numpy()  # the strictest theme's
    out["_sev"] = grouped["_sev"].max().to_numpy()
    out["themes"] = join_themes(codes, df["theme_id"], n_groups)
    out["severity"] = np.asarray(SEVERITIES, dtype=object)[out["_sev"].to_numpy()]
    out["priority"] = out["score"] * out["money_at_risk"]
    extra = (out["n_findings"] - 1).astype(str)
    many = out["n_findings"] > 1
    out["title_zh"] = out["reason_zh"].where(~many, out["reason_zh"] + "（另 " + extra + " 条）")
    out["title_en"] = out["reason_en"].where(~many, out["reason_en"] + " (+" + extra + " more)")
    return out.drop(columns=["_sev", "reason_zh", "reason_en"])


def _any_of(session: Session, column: str, values: list[Any]) -> tuple[str, dict[str, Any]]:
    """SQL ``column IN (values)`` with one parameter however many values (array / JSON)."""
    if session.get_bind().dialect.name == "postgresql":
        if values and all(isinstance(v, str) and UNIT not in v for v in values):
            # one text split on the server: cheaper than adapting a list of 10⁵ strings
            return f"{column} = ANY(string_to_array(:vals, chr(31)))", {"vals": UNIT.join(values)}
        return f"{column} = ANY(:vals)", {"vals": values}
    return f"{column} IN (SELECT value FROM json_each(:vals))", {"vals": json.dumps(values)}


def _known_findings(session: Session, df: pd.DataFrame) -> pd.Series:
    """Whether each finding of the batch is already linked to a task (by ``finding_id``)."""
    if not len(df):
        return pd.Series(False, index=df.index)
    ids = df["finding_id"].astype(str).tolist()
    cond, params = _any_of(session, "finding_id", ids)
    stored = session.execute(text(f"SELECT finding_id FROM task_findings WHERE {cond}"), params)
    return df["finding_id"].isin(pd.Index(stored.scalars().all(), dtype=object))


def _open_tasks(session: Session, df: pd.DataFrame) -> pd.Series:
    """Per finding, the id of its entity's open task in its bureau (NaN if none)."""
    if not len(df):
        return pd.Series(np.nan, index=df.index)
    entities = sorted(df["entity"].astype(str).unique().tolist())
    cond, params = _any_of(session, "entity", entities)
    final = ", ".join(f"'{s}'" for s in sorted(FINAL_STATES))
    rows = session.execute(
        text(
            "SELECT id, entity_kind, entity, bureau, period_start FROM tasks "
            f"WHERE state NOT IN ({final}) AND {cond}"
        ),
        params,
    ).all()
    found = pd.DataFrame(rows, columns=["id", "entity_kind", "entity", "bureau", "start"])
    if found.empty:
        return pd.Series(np.nan, index=df.index)
    found["start"] = pd.to_datetime(found["start"])
    keys = ["entity_kind", "entity", "bureau"]
    found = found.sort_values(["start", "id"]).drop_duplicates(keys, keep="last")
    probe = df[keys].astype(str).merge(found[[*keys, "id"]].astype({"id": "float64"}), "left")
    return pd.Series(probe["id"].to_numpy(), index=df.index)


def _known_tasks(session: Session, rows: pd.DataFrame) -> dict[str, int]:
    """``task_key → id`` of stored tasks for the findings ``rows`` (with ``task_key``)."""
    if not len(rows):
        return {}
    bureaus = sorted(rows["bureau"].astype(str).unique().tolist())
    starts = sorted(pd.DatetimeIndex(rows["period_start"].unique()).date.tolist())
    stmt = select(Task.task_key, Task.id).where(
        Task.bureau.in_(bureaus), Task.period_start.in_(starts)
    )  # a superset (the batch's bureaus and periods), matched here
    known = pd.DataFrame(session.execute(stmt).all(), columns=["task_key", "id"])
    known = known[known["task_key"].isin(rows["task_key"])]
    return dict(zip(known["task_key"].tolist(), known["id"].astype(int).tolist(), strict=True))


def _themes_sql(session: Session) -> str:
    """Sorted, comma-joined distinct theme ids of ``tasks.id``'s findings (as in join_themes)."""
    if session.get_bind().dialect.name == "postgresql":
        return (
            "(SELECT string_agg(x, ',' ORDER BY x) FROM (SELECT DISTINCT "
            'f.theme_id COLLATE "C" AS x FROM task_findings f WHERE f.task_id = tasks.id) d)'
        )
    return (
        "(SELECT group_concat(x, ',') FROM (SELECT DISTINCT f.theme_id AS x "
        "FROM task_findings f WHERE f.task_id = tasks.id ORDER BY x) d)"
    )


def refresh_tasks(session: Session, task_ids: list[int], now: dt.datetime) -> int:
    """Recompute the finding-derived fields of ``task_ids`` from their linked findings (SQL).

    Sets ``n_findings``, ``themes``, ``score`` (max), ``money_at_risk`` and ``kwh_at_risk``
    (sums), ``severity`` (highest), ``priority`` (score × money) and the titles (the reason of
    the highest-scoring finding, "+N more"), increments ``version`` and sets ``updated_at``.
    Returns the number of tasks updated.
    """
    if not task_ids:
        return 0
    cond, params = _any_of(session, "id", sorted(int(i) for i in task_ids))
    one = "FROM task_findings f WHERE f.task_id = tasks.id"
    rank = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(SEVERITIES))
    back = " ".join(f"WHEN {i} THEN '{s}'" for i, s in enumerate(SEVERITIES))
    first = session.execute(
        text(
            f"UPDATE tasks SET n_findings = (SELECT count(*) {one}), "
            f"score = (SELECT max(f.score) {one}), "
            f"money_at_risk = (SELECT coalesce(sum(f.money_at_risk), 0) {one}), "
            f"kwh_at_risk = (SELECT coalesce(sum(f.kwh_at_risk), 0) {one}), "
            f"severity = CASE (SELECT max(CASE f.severity {rank} END) {one}) {back} "
            "ELSE severity END, "
            f"themes = {_themes_sql(session)}, version = version + 1, updated_at = :now "
            f"WHERE {cond}"
        ),
        params | {"now": now},
    )
    lead = f"(SELECT f.{{col}} {one} ORDER BY f.score DESC, f.id LIMIT 1)"
    extra = "CAST(n_findings - 1 AS VARCHAR(12))"
    session.execute(
        text(
            "UPDATE tasks SET priority = coalesce(score * money_at_risk, 0), "
            f"title_zh = {lead.format(col='reason_zh')} || CASE WHEN n_findings > 1 "
            f"THEN '（另 ' || {extra} || ' 条）' ELSE '' END, "
            f"title_en = {lead.format(col='reason_en')} || CASE WHEN n_findings > 1 "
            f"THEN ' (+' || {extra} || ' more)' ELSE '' END "
            f"WHERE {cond}"
        ),
        params,
    )
    return int(getattr(first, "rowcount", 0) or 0)


def tasks_from_findings(
    session: Session,
    findings: pd.DataFrame,
    actor: User,
    deadlines: DeadlinePolicy | None = None,
    *,
    source: str = "findings",
    now: dt.datetime | None = None,
    progress: Progress | None = None,
) -> IntakeResult:
    """Create tasks (state ``new``) from a findings frame with the columns of ``FINDINGS``.

    Parameters
    ----------
    session
        An open session; the caller commits (a batch is one transaction).
    findings
        One row per finding; see :data:`audit_lib.data.schema.FINDINGS`.
    actor
        The user creating the tasks (city or bureau auditor, or admin), within scope.
    deadlines
        Deadline policy for the ``new`` state; defaults to :class:`DeadlinePolicy`.
    progress
        Called as ``progress(step, done, total)`` after each chunk written.
    """
    if actor.role not in CREATE_ROLES:
        raise PermissionDenied(
            f"角色 {actor.role} 不能生成任务 (user {actor.name} may not "
            "create tasks: needs city/bureau auditor or admin)"
        )
    df = validate_findings(findings, source)
    if actor.bureau is not None:
        out = np.flatnonzero((df["bureau"] != actor.bureau).to_numpy())
        if out.size:
            raise PermissionDenied(
                f"用户 {actor.name} 只能处理 {actor.bureau} 的发现 (finding row {int(out[0])} "
                f"is in bureau {df['bureau'].iat[int(out[0])]}, out of scope)"
            )
    policy = deadlines or DeadlinePolicy()
    now = now or utcnow()
    df = df.assign(task_key=task_keys(df))
    seen = _known_findings(session, df)
    known = int(seen.sum())
    df = df[~seen.to_numpy()].reset_index(drop=True)
    open_id = _open_tasks(session, df)
    to_open = open_id.notna().to_numpy()
    rest = df[~to_open]
    key_to_id = _known_tasks(session, rest)
    fresh_rows = rest[~rest["task_key"].isin(pd.Index(list(key_to_id), dtype=object))]
    created: list[int] = []
    if len(fresh_rows):
        fresh = group_findings(fresh_rows)
        created = _insert_tasks(session, fresh, actor.name, policy, now)
        key_to_id.update(zip(fresh["task_key"], created, strict=True))
        if progress:
            progress("tasks", len(created), len(created))
    pos = pd.Index(list(key_to_id), dtype=object).get_indexer(pd.Index(df["task_key"]))
    ids = np.append(np.fromiter(key_to_id.values(), dtype=np.float64, count=len(key_to_id)), np.nan)
    task_id = pd.Series(ids[pos], index=df.index)  # position -1 (no key) → NaN
    task_id[to_open] = open_id[to_open]
    linked = _link_findings(session, df, task_id.astype("int64"))
    if progress:
        progress("findings", linked, linked)
    reused = task_id[~task_id.isin(pd.Index(created, dtype="float64"))].astype("int64")
    counts = reused.value_counts().sort_index()
    refresh_tasks(session, counts.index.tolist(), now)
    events = [EventIn(actor.name, "create", i, None, "new") for i in created]
    events += [
        EventIn(actor.name, "link_findings", int(i), detail={"findings": int(n)})
        for i, n in zip(counts.index.tolist(), counts.tolist(), strict=True)
    ]
    append_events(session, events, seal_now=True)
    if progress:
        progress("log", len(events), len(events))
    return IntakeResult(len(created), linked, known, created)


def _insert_tasks(
    session: Session, fresh: pd.DataFrame, actor: str, policy: DeadlinePolicy, now: dt.datetime
) -> list[int]:
    """Insert the new tasks (state ``new``, first deadline); return ids in ``fresh`` order."""
    base = policy.days_for("new") or 0.0
    codes, combos = pd.factorize(fresh["themes"])
    per_combo = np.array([policy.days_for("new", str(t).split(",")) or base for t in combos])
    days = pd.Series(per_combo[codes] if len(combos) else [], index=fresh.index, dtype=float)
    stamp = pd.Timestamp(now)
    frame = fresh[TASK_COLUMNS].copy()
    frame["entity"] = frame["entity"].astype(str)
    frame["n_findings"] = frame["n_findings"].astype("int64")
    frame["priority"] = frame["priority"].fillna(0.0)
    frame["due_at"] = stamp + pd.to_timedelta(days, unit="D")
    frame["near_at"] = stamp + pd.to_timedelta(days * 0.8, unit="D")
    frame["deadline_at"] = stamp + pd.to_timedelta(fresh["deadline_days"], unit="D")
    constants: dict[str, int | str | bool] = {
        "version": 1,
        "state": "new",
        "created_by": actor,
        "near_notified": False,
        "escalation_level": 0,
        "rectification_round": 0,
        "appeal_used": False,
    }
    for name, value in constants.items():
        frame[name] = value
    for name in ("created_at", "updated_at", "state_entered_at"):
        frame[name] = stamp
    if session.get_bind().dialect.name == "postgresql":
        ids = _next_task_ids(session, len(frame))
        frame.insert(0, "id", ids)
        copy_frame(session, table_of(Task), frame)
        return ids
    max_before = session.execute(select(func.max(Task.id))).scalar() or 0
    copy_frame(session, table_of(Task), frame)
    top, count = session.execute(
        select(func.max(Task.id), func.count()).where(Task.id > max_before)
    ).one()
    if (top, count) == (max_before + len(frame), len(frame)):  # rowids given in order
        return list(range(max_before + 1, max_before + len(frame) + 1))
    rows = session.execute(select(Task.task_key, Task.id).where(Task.id > max_before)).all()
    known = {key: ident for key, ident in rows}
    return [known[k] for k in fresh["task_key"]]


def _next_task_ids(session: Session, n: int) -> list[int]:
    """PostgreSQL: ``n`` ids drawn from the tasks' id sequence (safe under concurrency)."""
    rows = session.execute(
        text(
            "SELECT nextval(pg_get_serial_sequence('tasks', 'id')) "
            "FROM generate_series(1, :n) ORDER BY 1"
        ),
        {"n": n},
    )
    return [int(i) for i in rows.scalars()]


def _link_findings(session: Session, df: pd.DataFrame, task_id: pd.Series) -> int:
    if not len(df):
        return 0
    frame = df[FINDING_COLUMNS].copy()
    frame["task_id"] = task_id.to_numpy()
    frame["finding_id"] = frame["finding_id"].astype(str)
    frame["theme_version"] = frame["theme_version"].astype("int64")
    frame["evidence"] = frame["evidence"].astype(str)
    return copy_frame(session, table_of(TaskFinding), frame)
