"""From findings to tasks (发现问题 → 稽查任务), in bulk and idempotently.

Findings of the same entity (customer or area) and period become one task; its priority is
score × money at risk. Re-submitting the same findings creates nothing: tasks are keyed by
``task_key`` (``kind|entity|start|end``, unique in the database) and findings by
``finding_id`` (unique in ``task_findings``). A new finding for an existing task is linked to
it. Everything happens in the caller's transaction: a batch is wholly there or wholly absent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from audit_lib.data.schema import FINDINGS, SEVERITIES
from audit_lib.errors import DataError, PermissionDenied, SchemaError
from audit_lib.tasks.auditlog import EventIn, append_events
from audit_lib.tasks.bulk import copy_frame, table_of
from audit_lib.tasks.deadlines import DeadlinePolicy
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
REQUIRED = [c.name for c in FINDINGS.columns]
NOT_NULL = [c.name for c in FINDINGS.columns if not c.nullable]
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class IntakeResult:
    """What :func:`tasks_from_findings` did."""

    tasks_created: int
    findings_linked: int
    findings_skipped: int
    task_ids: list[int]


def validate_findings(findings: pd.DataFrame, source: str = "findings") -> pd.DataFrame:
    """Check columns, nulls, severities, periods and duplicates; return a normalised copy."""
    missing = [c for c in REQUIRED if c not in findings.columns]
    if missing:
        raise SchemaError(f"findings lack columns {missing}", file=source, field=missing[0])
    df = findings[REQUIRED].reset_index(drop=True)
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
    for col in ("score", "kwh_at_risk", "money_at_risk"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
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
    out["_sev"] = grouped["_sev"].max().to_numpy()
    out["themes"] = join_themes(codes, df["theme_id"], n_groups)
    out["severity"] = np.asarray(SEVERITIES, dtype=object)[out["_sev"].to_numpy()]
    out["priority"] = out["score"] * out["money_at_risk"]
    extra = (out["n_findings"] - 1).astype(str)
    many = out["n_findings"] > 1
    out["title_zh"] = out["reason_zh"].where(~many, out["reason_zh"] + "（另 " + extra + " 条）")
    out["title_en"] = out["reason_en"].where(~many, out["reason_en"] + " (+" + extra + " more)")
    return out.drop(columns=["_sev", "reason_zh", "reason_en"])


def _scope_of(df: pd.DataFrame) -> list[ColumnElement[bool]]:
    """A superset filter on :class:`Task` for the batch: its bureaus and period starts."""
    bureaus = sorted(df["bureau"].astype(str).unique().tolist())
    starts = sorted(pd.DatetimeIndex(df["period_start"].unique()).date.tolist())
    return [Task.bureau.in_(bureaus), Task.period_start.in_(starts)]


def _known_tasks(session: Session, df: pd.DataFrame) -> dict[str, int]:
    """``task_key → id`` of stored tasks for the batch's keys."""
    if not len(df):
        return {}
    rows = session.execute(select(Task.task_key, Task.id).where(*_scope_of(df))).all()
    known = pd.DataFrame(rows, columns=["task_key", "id"])
    known = known[known["task_key"].isin(df["task_key"])]
    return dict(zip(known["task_key"].tolist(), known["id"].tolist(), strict=True))


def _known_findings(session: Session, df: pd.DataFrame) -> pd.Series:
    """Whether each finding of the batch is already linked to a task."""
    if not len(df):
        return pd.Series(False, index=df.index)
    stmt = select(TaskFinding.finding_id).join(Task, Task.id == TaskFinding.task_id)
    stored = session.execute(stmt.where(*_scope_of(df))).scalars().all()
    return df["finding_id"].isin(pd.Index(stored, dtype=object))


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
    df = df[~seen.to_numpy()]
    tasks = group_findings(df) if len(df) else pd.DataFrame(columns=["task_key"])
    key_to_id = _known_tasks(session, tasks)
    fresh = tasks[~tasks["task_key"].isin(key_to_id)].reset_index(drop=True)
    created: list[int] = []
    if len(fresh):
        created = _insert_tasks(session, fresh, actor.name, policy, now)
        key_to_id.update(zip(fresh["task_key"], created, strict=True))
        if progress:
            progress("tasks", len(created), len(created))
    linked = _link_findings(session, df, key_to_id)
    if progress:
        progress("findings", linked, linked)
    events = [EventIn(actor.name, "create", i, None, "new") for i in created]
    reused = set(df["task_key"].map(key_to_id)) - set(created)
    events += [EventIn(actor.name, "link_findings", int(i)) for i in sorted(reused)]
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
    max_before = session.execute(select(func.max(Task.id))).scalar() or 0
    copy_frame(session, table_of(Task), frame)
    rows = session.execute(select(Task.task_key, Task.id).where(Task.id > max_before)).all()
    ids = {key: ident for key, ident in rows}
    created = [ids[k] for k in fresh["task_key"]]
    return created


def _link_findings(session: Session, df: pd.DataFrame, key_to_id: dict[str, int]) -> int:
    if not len(df):
        return 0
    frame = df[FINDING_COLUMNS].copy()
    frame["task_id"] = df["task_key"].map(key_to_id).astype("int64")
    frame["finding_id"] = frame["finding_id"].astype(str)
    frame["theme_version"] = frame["theme_version"].astype("int64")
    frame["evidence"] = frame["evidence"].astype(str)
    return copy_frame(session, table_of(TaskFinding), frame)
