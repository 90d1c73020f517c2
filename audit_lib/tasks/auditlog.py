"""The append-only, hash-chained audit log (审计日志).

Every action appends an :class:`AuditEvent` (who, when, what, state before → after, details).
Sealed rows carry a chain position ``seq`` and ``hash`` = SHA-256 over the previous row's hash
and the row's own content (``seq`` included), so editing, deleting or reordering sealed rows
breaks the chain; the single :class:`AuditChainHead` row names the last sealed row, so cutting
off the tail is seen too.

Two ways in:

* :func:`append_events` with ``seal_now=False`` (single actions) inserts rows unsealed, without
  any lock, so concurrent transactions never wait on the log; :func:`seal` (called right after
  each commit by :func:`audit_lib.tasks.service.commit_or_conflict`, and by ``audit log
  verify``) then chains every committed unsealed row under the head lock, in insertion order.
* ``seal_now=True`` (bulk intake) locks the head inside the caller's transaction and writes the
  rows already chained, in one ``COPY``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from audit_lib.tasks.bulk import copy_frame, table_of
from audit_lib.tasks.models import AuditChainHead, AuditEvent, utcnow

GENESIS = "0" * 64
SEP = "\x1f"  # ASCII unit separator: cannot occur in names, actions or JSON text
HEAD_ID = 1
CONTENT = ("task_id", "actor", "at", "action", "before", "after", "detail")


@dataclass(frozen=True)
class EventIn:
    """An event to append (the log assigns ``at``, ``seq`` and the hashes)."""

    actor: str
    action: str
    task_id: int | None = None
    before: str | None = None
    after: str | None = None
    detail: dict[str, Any] | None = None


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify`: ``ok``, rows checked, the first bad row, rows not sealed."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""
    unsealed: int = 0
    last_hash: str = GENESIS

    def message(self) -> str:
        """One line for the command line."""
        if self.ok:
            return (
                f"审计日志完整 audit log OK: {self.checked} events chained, "
                f"{self.unsealed} not yet sealed, head {self.last_hash[:16]}"
            )
        return f"审计日志被篡改 audit log broken at seq {self.first_bad_seq}: {self.problem}"


def canonical_json(detail: dict[str, Any] | None) -> str:
    """Deterministic JSON (sorted keys, no spaces, UTF-8 kept)."""
    return json.dumps(detail or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def hash_row(prev_hash: str, seq: int, *content: object) -> str:
    """SHA-256 of a row (``seq`` and the :data:`CONTENT` fields) chained to ``prev_hash``."""
    fields = [prev_hash, str(seq), *("" if v is None else str(v) for v in content)]
    return hashlib.sha256(SEP.join(fields).encode("utf-8")).hexdigest()


def ensure_head(session: Session) -> None:
    """Create the chain head row if absent (migrations create it; ``create_all`` does not)."""
    if session.get(AuditChainHead, HEAD_ID) is None:
        session.add(AuditChainHead(id=HEAD_ID, last_seq=0, last_hash=GENESIS))
        session.flush()


def _lock_head(session: Session, *, wait: bool = True) -> AuditChainHead | None:
    """Lock the head row (PostgreSQL row lock; SQLite takes its write lock by a no-op update)."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(AuditChainHead)
            .where(AuditChainHead.id == HEAD_ID)
            .values(last_seq=AuditChainHead.last_seq)
        )
    stmt = (
        select(AuditChainHead)
        .where(AuditChainHead.id == HEAD_ID)
        .with_for_update(skip_locked=not wait)
        .execution_options(populate_existing=True)
    )
    head = session.execute(stmt).scalar_one_or_none()
    if head is None and wait:
        ensure_head(session)
        head = session.execute(stmt).scalar_one()
    return head


def _frame(events: Sequence[EventIn]) -> pd.DataFrame:
    at = utcnow().isoformat(timespec="microseconds")
    frame = pd.DataFrame(
        {
            "task_id": pd.array([e.task_id for e in events], dtype="Int64"),
            "actor": [e.actor for e in events],
            "at": at,
            "action": [e.action for e in events],
            "before": pd.Series([e.before for e in events], dtype=object),
            "after": pd.Series([e.after for e in events], dtype=object),
            "detail": [canonical_json(e.detail) if e.detail else "{}" for e in events],
        }
    )
    return frame


def _chain(frame: pd.DataFrame, seq: int, prev: str) -> tuple[pd.DataFrame, int, str]:
    """Give ``frame``'s rows chain positions and hashes after (``seq``, ``prev``)."""
    seqs, prevs, hashes = [], [], []
    content = frame[list(CONTENT)].astype(object).where(frame[list(CONTENT)].notna(), None)
    for row in content.itertuples(index=False, name=None):
        seq += 1
        digest = hash_row(prev, seq, *row)
        seqs.append(seq)
        prevs.append(prev)
        hashes.append(digest)
        prev = digest
    return frame.assign(seq=seqs, prev_hash=prevs, hash=hashes), seq, prev


def append_events(session: Session, events: Sequence[EventIn], *, seal_now: bool = False) -> int:
    """Append ``events`` in the caller's transaction; return how many.

    With ``seal_now`` the head is locked until the caller commits and the rows are written
    chained (use it for large batches); otherwise they are written unsealed, without locking.
    """
    if not events:
        return 0
    frame = _frame(events)
    if seal_now:
        _seal_locked(session)
        head = _lock_head(session)
        assert head is not None
        frame, head.last_seq, head.last_hash = _chain(frame, head.last_seq, head.last_hash)
        session.flush()
    copy_frame(session, table_of(AuditEvent), frame)
    return len(frame)


def _seal_locked(session: Session) -> int:
    head = _lock_head(session)
    assert head is not None
    cols = [AuditEvent.id, *(getattr(AuditEvent, c) for c in CONTENT)]
    rows = session.execute(select(*cols).where(AuditEvent.seq.is_(None)).order_by(AuditEvent.id))
    pending = pd.DataFrame(rows.all(), columns=["id", *CONTENT], dtype=object)
    if pending.empty:
        return 0
    chained, head.last_seq, head.last_hash = _chain(pending, head.last_seq, head.last_hash)
    table = table_of(AuditEvent)
    stmt = (
        update(table)
        .where(table.c.id == bindparam("_id"))
        .values(seq=bindparam("_seq"), prev_hash=bindparam("_prev"), hash=bindparam("_hash"))
    )
    params = [
        {"_id": int(i), "_seq": int(s), "_prev": p, "_hash": h}
        for i, s, p, h in zip(
            chained["id"], chained["seq"], chained["prev_hash"], chained["hash"], strict=True
        )
    ]
    session.execute(stmt, params)
    session.flush()
    return len(params)


def seal(session: Session, *, wait: bool = True) -> int:
    """Chain every committed unsealed event and commit; return how many were sealed.

    With ``wait=False`` it gives up at once (returns 0) if another session is sealing: that
    one, or the next, seals the rest.
    """
    try:
        if not wait and _lock_head(session, wait=False) is None:
            session.rollback()
            return 0
        count = _seal_locked(session)
        session.commit()
    except OperationalError:
        session.rollback()
        if wait:
            raise
        return 0
    return count


def verify(session: Session, batch: int = 20_000) -> VerifyResult:
    """Walk the sealed chain in ``seq`` order; report the first row edited, deleted or moved."""
    head = session.get(AuditChainHead, HEAD_ID)
    unsealed = session.execute(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.seq.is_(None))
    ).scalar_one()
    prev, expected_seq, checked = GENESIS, 1, 0
    cols = [AuditEvent.seq, *(getattr(AuditEvent, c) for c in CONTENT)]
    stmt = (
        select(*cols, AuditEvent.prev_hash, AuditEvent.hash)
        .where(AuditEvent.seq.is_not(None))
        .order_by(AuditEvent.seq)
    )
    for row in session.execute(stmt.execution_options(yield_per=batch)):
        seq = row.seq
        if seq != expected_seq:
            return VerifyResult(False, checked, expected_seq, f"row {expected_seq} is missing")
        if row.prev_hash != prev:
            return VerifyResult(False, checked, seq, "prev_hash does not match the row before")
        if hash_row(prev, seq, *(getattr(row, c) for c in CONTENT)) != row.hash:
            return VerifyResult(False, checked, seq, "content does not match its hash (edited)")
        prev, expected_seq, checked = row.hash, seq + 1, checked + 1
    last_seq = head.last_seq if head is not None else 0
    last_hash = head.last_hash if head is not None else GENESIS
    if last_seq != checked or last_hash != prev:
        return VerifyResult(
            False, checked, checked + 1, f"chain head expects {last_seq} rows: last rows deleted"
        )
    return VerifyResult(True, checked, unsealed=int(unsealed), last_hash=prev)
