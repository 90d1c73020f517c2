"""The append-only, hash-chained audit log (审计日志).

Every action appends an :class:`AuditEvent` (who, when, what, state before → after, details).
Sealed rows carry a chain position ``seq`` and ``hash`` = SHA-256 over the previous row's hash
and the row's own content (``seq`` included), so editing, deleting or reordering sealed rows
breaks the chain; the single :class:`AuditChainHead` row names the last sealed row, so cutting
off the tail is seen too.

Appending (:func:`append_events`) writes the rows already chained when the head lock can be
had: always for batches (``seal_now=True``, waiting for the lock), and for single actions only
if nobody holds it (``SELECT … FOR UPDATE SKIP LOCKED``), so concurrent actions never queue
behind the log. A row written unsealed is chained, in insertion order, by the next transaction
that gets the lock, or by :func:`seal` (``audit log verify`` seals first).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from audit_lib.tasks.bulk import copy_rows, table_of
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


def _rows(events: Sequence[EventIn]) -> list[dict[str, Any]]:
    at = utcnow().isoformat(timespec="microseconds")
    return [
        {
            "task_id": e.task_id,
            "actor": e.actor,
            "at": at,
            "action": e.action,
            "before": e.before,
            "after": e.after,
            "detail": canonical_json(e.detail) if e.detail else "{}",
        }
        for e in events
    ]


def event_row(event: EventIn) -> dict[str, Any]:
    """The stored content of one event (``at`` is now), before it is chained."""
    return _rows([event])[0]


def _chain(rows: list[dict[str, Any]], head: AuditChainHead) -> None:
    """Give ``rows`` (in order) chain positions and hashes after the head; move the head."""
    seq, prev = head.last_seq, head.last_hash
    sha = hashlib.sha256
    for row, text in zip(rows, _content_texts(rows), strict=True):
        seq += 1
        row["seq"], row["prev_hash"] = seq, prev
        prev = row["hash"] = sha(f"{prev}{SEP}{seq}{SEP}{text}".encode()).hexdigest()
    head.last_seq, head.last_hash = seq, prev


def _content_texts(rows: list[dict[str, Any]]) -> list[str]:
    """Each row's :data:`CONTENT` fields joined as :func:`hash_row` joins them."""
    return [SEP.join("" if r[c] is None else str(r[c]) for c in CONTENT) for r in rows]


def _insert(session: Session, rows: list[dict[str, Any]]) -> None:
    if len(rows) > 500:
        columns = list(rows[0])
        copy_rows(session, table_of(AuditEvent), columns, [tuple(r.values()) for r in rows])
    else:
        session.execute(insert(table_of(AuditEvent)), rows)


def _seal_pending(session: Session, head: AuditChainHead) -> int:
    """Chain the unsealed rows visible now (committed by others, or ours), in id order."""
    cols = [AuditEvent.id, *(getattr(AuditEvent, c) for c in CONTENT)]
    pending = [
        dict(r._mapping)
        for r in session.execute(
            select(*cols).where(AuditEvent.seq.is_(None)).order_by(AuditEvent.id)
        )
    ]
    if not pending:
        return 0
    _chain(pending, head)
    table = table_of(AuditEvent)
    stmt = (
        update(table)
        .where(table.c.id == bindparam("_id"))
        .values(seq=bindparam("_seq"), prev_hash=bindparam("_prev"), hash=bindparam("_hash"))
    )
    params = [
        {"_id": r["id"], "_seq": r["seq"], "_prev": r["prev_hash"], "_hash": r["hash"]}
        for r in pending
    ]
    session.execute(stmt, params)
    return len(params)


def _append_on_server(session: Session, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: one ``audit_append`` call per row (migration 0003), one round trip each."""
    stmt = select(
        func.audit_append(
            bindparam("task_id"),
            bindparam("actor"),
            bindparam("at"),
            bindparam("action"),
            bindparam("before"),
            bindparam("after"),
            bindparam("detail"),
        )
    )
    for row in rows:
        session.execute(stmt, row)


def append_events(session: Session, events: Sequence[EventIn], *, seal_now: bool = False) -> int:
    """Append ``events`` in the caller's transaction; return how many.

    The rows are written chained when the head lock can be had: always with ``seal_now``
    (waiting for it; use for batches), else only if nobody holds it (``SKIP LOCKED``), so
    concurrent actions never queue behind the log. Rows written unsealed are chained by the
    next transaction that gets the lock, or by :func:`seal`. On PostgreSQL, single actions
    (no ``seal_now``) call the server function ``audit_append`` (migration 0003), which does
    the same in one round trip; call it last before commit, as the head lock is held until
    then.
    """
    if not events:
        return 0
    rows = _rows(events)
    if not seal_now and session.get_bind().dialect.name == "postgresql":
        _append_on_server(session, rows)
        return len(rows)
    try:
        head = _lock_head(session, wait=seal_now)
    except OperationalError:  # SQLite: another writer holds the lock
        head = None
        if seal_now:
            raise
    if head is not None:
        _seal_pending(session, head)
        _chain(rows, head)
        session.flush()
    _insert(session, rows)
    return len(rows)


def seal(session: Session) -> int:
    """Chain every committed unsealed event and commit; return how many were sealed."""
    head = _lock_head(session)
    assert head is not None
    count = _seal_pending(session, head)
    session.commit()
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
