"""Concurrency on PostgreSQL: 20 workers driving the same 500 tasks; optimistic locking.

Every worker walks all tasks in its own random order and tries the next step of the loop
(dispatch → accept → submit result → start review → approve). Exactly one attempt per step may
win; the others must get a clear conflict (or, having read the new state, an illegal-transition)
error. Afterwards every task is approved with exactly one event per step, and the log verifies.
"""

# ruff: noqa: F401, F811  (pytest fixtures imported from tasks_fixtures)

from __future__ import annotations

import multiprocessing as mp
import random
from collections import Counter

import pytest
from sqlalchemy import func, select
from tasks_fixtures import make_findings, pg_template, pg_url

from audit_lib.db import create_engine, session_factory
from audit_lib.errors import ConflictError, IllegalTransition
from audit_lib.tasks.auditlog import seal, verify
from audit_lib.tasks.models import AuditEvent, Task
from audit_lib.tasks.service import act, add_user, commit_or_conflict, get_user, tasks_from_findings

STEPS = {
    "new": ("dispatch", "aud_yz", None),
    "dispatched": ("accept", "han_s1", None),
    "handling": ("submit_result", "han_s1", "no_problem"),
    "result_submitted": ("start_review", "rev_yz", None),
    "under_review": ("approve", "rev_yz", None),
}
N_TASKS, N_WORKERS = 500, 20


def worker(url: str, ids: list[int], seed: int) -> Counter[str]:
    """Try to advance every task until it is approved; count wins and each kind of loss."""
    engine = create_engine(url, pool_size=1)
    factory = session_factory(engine)
    tally: Counter[str] = Counter()
    order = list(ids)
    random.Random(seed).shuffle(order)
    for tid in order:
        while True:  # drive this task as far as it goes; others may be driving it too
            with factory() as s:
                task = s.get(Task, tid)
                assert task is not None
                if task.state not in STEPS:
                    break
                action, user, outcome = STEPS[task.state]
                try:
                    act(s, tid, action, user, outcome=outcome, expected_version=task.version)
                    commit_or_conflict(s)
                    tally["won"] += 1
                except ConflictError:
                    tally["conflict"] += 1
                except IllegalTransition:
                    tally["illegal"] += 1
    engine.dispose()
    return tally


@pytest.mark.pg
@pytest.mark.slow
def test_concurrent_workers_lose_nothing_and_duplicate_nothing(pg_url, rng) -> None:
    engine = create_engine(pg_url)
    factory = session_factory(engine)
    with factory() as s:
        add_user(s, "aud_yz", "bureau_auditor", "YZ")
        add_user(s, "han_s1", "station_handler", "YZ", "YZ-S1")
        add_user(s, "rev_yz", "reviewer", "YZ")
        ids = tasks_from_findings(
            s, make_findings(N_TASKS, rng, stations=("YZ-S1",)), get_user(s, "aud_yz")
        ).task_ids
        s.commit()
    engine.dispose()
    ctx = mp.get_context("fork")
    with ctx.Pool(N_WORKERS) as pool:
        tallies = pool.starmap(worker, [(pg_url, ids, seed) for seed in range(N_WORKERS)])
    total = sum(tallies, Counter())
    assert total["won"] == N_TASKS * len(STEPS)
    assert total["conflict"] > 0  # the race really happened
    engine = create_engine(pg_url)
    with session_factory(engine)() as s:
        states = Counter(s.execute(select(Task.state)).scalars())
        assert states == Counter({"approved": N_TASKS})
        assert set(s.execute(select(Task.version)).scalars()) == {1 + len(STEPS)}
        per_task = s.execute(
            select(AuditEvent.task_id, AuditEvent.action, func.count())
            .where(AuditEvent.task_id.is_not(None))
            .group_by(AuditEvent.task_id, AuditEvent.action)
        ).all()
        assert len(per_task) == N_TASKS * (1 + len(STEPS))
        assert {n for _, _, n in per_task} == {1}
        seal(s)
        result = verify(s)
        assert result.ok and result.unsealed == 0, result.message()
        assert result.checked == 3 + N_TASKS * (1 + len(STEPS))
    engine.dispose()
