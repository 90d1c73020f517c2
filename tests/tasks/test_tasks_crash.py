"""A process killed in the middle of a batch leaves the batch wholly absent; a re-run completes it.

The child process runs the real intake over a Parquet file and reports progress after every
write; the test kills it (SIGKILL) right after the tasks are written and before the findings,
the log and the commit.
"""

# ruff: noqa: F401, F811  (pytest fixtures imported from tasks_fixtures)

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select
from tasks_fixtures import db_url, make_findings, make_session, pg_template, pg_url, sqlite_url

from audit_lib.tasks.auditlog import seal, verify
from audit_lib.tasks.models import AuditEvent, Task, TaskFinding
from audit_lib.tasks.service import get_user, tasks_from_findings

CHILD = textwrap.dedent(
    """
    import sys, time
    import pandas as pd
    from audit_lib.db import create_engine, session_factory
    from audit_lib.tasks.service import get_user, tasks_from_findings

    def progress(step, done, total):
        print(step, done, total, flush=True)
        if step == "tasks":
            time.sleep(60)  # the parent kills us here, mid-transaction

    engine = create_engine(sys.argv[1])
    with session_factory(engine)() as s:
        tasks_from_findings(s, pd.read_parquet(sys.argv[2]), get_user(s, "aud_yz"),
                            progress=progress)
        s.commit()
    print("committed", flush=True)
    """
)


def _counts(factory) -> tuple[int, int, int]:
    with factory() as s:
        return tuple(  # type: ignore[return-value]
            int(s.execute(select(func.count()).select_from(m)).scalar_one())
            for m in (Task, TaskFinding, AuditEvent)
        )


@pytest.mark.slow
def test_killed_intake_leaves_nothing_and_rerun_completes(
    db_url, make_session, tmp_path, rng
) -> None:
    with make_session() as s:  # some tasks already there
        tasks_from_findings(s, make_findings(50, rng, prefix="7"), get_user(s, "aud_yz"))
        s.commit()
    before = _counts(make_session)
    path = tmp_path / "findings.parquet"
    make_findings(5000, rng, per_customer=2).to_parquet(path)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.Popen(
        [sys.executable, str(script), db_url, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.startswith("tasks 5000 5000"), line + child.stderr.read() if child.stderr else ""
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert _counts(make_session) == before  # the batch is wholly absent
    with make_session() as s:
        assert seal(s) >= 0 and verify(s).ok
        res = tasks_from_findings(s, pd.read_parquet(path), get_user(s, "aud_yz"))
        s.commit()
        assert (res.tasks_created, res.findings_linked) == (5000, 10000)
        again = tasks_from_findings(s, pd.read_parquet(path), get_user(s, "aud_yz"))
        s.commit()
        assert again.tasks_created == 0 and again.findings_skipped == 10000
    tasks, findings, events = _counts(make_session)
    assert (tasks, findings, events) == (before[0] + 5000, before[1] + 10000, before[2] + 5000)
    with make_session() as s:
        keys = s.execute(select(func.count(func.distinct(Task.task_key)))).scalar_one()
        assert keys == tasks
        result = verify(s)
        assert result.ok and result.checked == events
