"""The append-only, hash-chained audit log (审计日志).

Every action appends an :class:`AuditEvent` (who, when, what, state before → after, details).
Each row's ``hash`` is SHA-256 over the previous row's hash and the row's own canonical content
(its sequence number included), so editing, deleting or reordering rows breaks the chain.
Appending locks the single :class:`AuditChainHead` row (``SELECT … FOR UPDATE`` on
PostgreSQL; SQLite serialises writers anyway), which keeps the chain linear under concurrency.
Call :func:`append_events` after the task rows are flushed, so locks are always taken in the
same order (task rows, then the head).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_lib.tasks.bulk import copy_frame, table_of
from audit_lib.tasks.models import AuditChainHead, AuditEvent, utcnow

GENESIS = "0" * 64
SEP = "\x1f"  # ASCII unit separator: cannot occur in names, actions or JSON text
HEAD_ID = 1
EVENT_COLUMNS = (
    "seq",
    "task_id",
    "actor",
    "at",
    "action",
    "before",
    "after",
    "detail",
    "prev_hash",
    "hash",
)


@dataclass(frozen=True)
class EventIn:
    """An event to append (the log assigns ``seq``, ``at`` and the hashes)."""

    actor: str
    action: str
    task_id: int | None = None
    before: str | None = None
    after: str | None = None
    detail: dict[str, Any] | None = None


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify`: ``ok``, the number of rows checked, the first bad row."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""

    def message(self) -> str:
        """One line for the command line."""
        if self.ok:
            return f"审计日志完整 audit log OK: {self.checked} events, chain verified"
        return f"审计日志被篡改 audit log broken at seq {self.first_bad_seq}: {self.problem}"


def canonical_json(detail: dict[str, Any] | None) -> str:
    """Deterministic JSON (sorted keys, no spaces, UTF-8 kept)."""
    return json.dumps(detail or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def hash_row(
    prev_hash: str,
    seq: int,
    task_id: int | None,
    actor: str,
    at: str,
    action: str,
    before: str | None,
    after: str | None,
    detail: str,
) -> str:
    """SHA-256 of a row chained to ``prev_hash`` (fields joined by the unit separator)."""
    fields = (
        prev_hash,
        str(seq),
        "" if task_id is None else str(task_id),
        actor,
        at,
        action,
        before or "",
        after or "",
        detail,
    )
    return hashlib.sha256(SEP.join(fields).encode("utf-8")).hexdigest()


def ensure_head(session: Session) -> None:
    """Create the chain head row if absent (migrations create it; ``create_all`` does not)."""
    if session.get(AuditChainHead, HEAD_ID) is None:
        session.add(AuditChainHead(id=HEAD_ID, last_seq=0, last_hash=GENESIS))
        session.flush()


def _lock_head(session: Session) -> AuditChainHead:
    stmt = (
        select(AuditChainHead)
        .where(AuditChainHead.id == HEAD_ID)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    head = session.execute(stmt).scalar_one_or_none()
    if head is None:
        ensure_head(session)
        head = session.execute(stmt).scalar_one()
    return head


def append_events(session: Session, events: Sequence[EventIn]) -> int:
    """Append ``events`` to the chain inside the caller's transaction; return the last seq."""
    if not events:
        return 0
    head = _lock_head(session)
    seq, prev = head.last_seq, head.last_hash
    at = utcnow().isoformat(timespec="microseconds")
    rows: dict[str, list[object]] = {name: [] for name in EVENT_COLUMNS}
    for ev in events:
        seq += 1
        detail = canonical_json(ev.detail) if ev.detail else "{}"
        digest = hash_row(
            prev, seq, ev.task_id, ev.actor, at, ev.action, ev.before, ev.after, detail
        )
        for name, value in zip(
            EVENT_COLUMNS,
            (seq, ev.task_id, ev.actor, at, ev.action, ev.before, ev.after, detail, prev, digest),
            strict=True,
        ):
            rows[name].append(value)
        prev = digest
    frame = pd.DataFrame(rows)
    frame["task_id"] = frame["task_id"].astype("Int64")
    copy_frame(session, table_of(AuditEvent), frame)
    head.last_seq, head.last_hash = seq, prev
    session.flush()
    return seq


def verify(session: Session, batch: int = 20_000) -> VerifyResult:
    """Walk the chain in ``seq`` order; report the first row edited, deleted or reordered."""
    head = session.get(AuditChainHead, HEAD_ID)
    prev, expected_seq, checked = GENESIS, 1, 0
    stmt = select(
        AuditEvent.seq,
        AuditEvent.task_id,
        AuditEvent.actor,
        AuditEvent.at,
        AuditEvent.action,
        AuditEvent.before,
        AuditEvent.after,
        AuditEvent.detail,
        AuditEvent.prev_hash,
        AuditEvent.hash,
    ).order_by(AuditEvent.seq)
    for row in session.execute(stmt.execution_options(yield_per=batch)):
        seq = row.seq
        if seq != expected_seq:
            return VerifyResult(False, checked, expected_seq, f"row {expected_seq} is missing")
        if row.prev_hash != prev:
            return VerifyResult(False, checked, seq, "prev_hash does not match the row before")
        digest = hash_row(
            prev,
            seq,
            row.task_id,
            row.actor,
            row.at,
            row.action,
            row.before,
            row.after,
            row.detail,
        )
        if digest != row.hash:
            return VerifyResult(False, checked, seq, "content does not match its hash (edited)")
        prev, expected_seq, checked = row.hash, seq + 1, checked + 1
    last_seq = head.last_seq if head is not None else 0
    last_hash = head.last_hash if head is not None else GENESIS
    if last_seq != checked or last_hash != prev:
        return VerifyResult(
            False, checked, checked + 1, f"chain head expects {last_seq} rows: last rows deleted"
        )
    return VerifyResult(True, checked)
