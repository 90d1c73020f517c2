"""A real task database (and optionally a tiny mart) for the UI tests.

YZ has ``n_yz`` customer tasks (the first 12 customers also exist in the tiny mart of
``mart_fixture``), JB has ``n_jb``. Some YZ tasks are driven to ``result_submitted`` through
the task service, so a reviewer has work to do.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
from mart_fixture import write_tiny_mart
from sqlalchemy.orm import Session, sessionmaker
from tasks_fixtures import add_users, drive

from audit_lib.db import create_engine, session_factory
from audit_lib.migrations import upgrade
from audit_lib.tasks.service import add_user, get_user, tasks_from_findings

THEMES = np.array(["zero_consumption", "abrupt_drop", "theft_suspicion", "meter_events"])
SUBMIT = [
    ("dispatch", "aud_yz", {}),
    ("accept", "han_s1", {}),
    ("submit_result", "han_s1", {"outcome": "confirmed_theft"}),
]


def findings_for(
    bureau: str,
    cons: list[str],
    stations: list[str],
    rng: np.random.Generator,
    outputs: str = "outputs",
) -> pd.DataFrame:
    """One finding per customer (themes in turn) for February 2025."""
    n = len(cons)
    theme = THEMES[np.arange(n) % len(THEMES)]
    score = rng.random(n)
    entity = pd.Series(cons, dtype=object)
    return pd.DataFrame(
        {
            "finding_id": entity + ":" + pd.Series(theme) + ":2025-02",
            "theme_id": theme,
            "theme_version": np.int32(1),
            "entity": entity,
            "entity_kind": "customer",
            "station_id": stations,
            "area_id": "A",
            "period_start": pd.Timestamp("2025-02-01"),
            "period_end": pd.Timestamp("2025-02-28"),
            "score": score,
            "severity": np.where(score > 0.5, "high", "low"),
            "kwh_at_risk": rng.random(n) * 500,
            "money_at_risk": 10 + rng.random(n) * 300,
            "reason_zh": "电量突变：较前期下降 62%",
            "reason_en": "consumption dropped by 62%",
            "evidence": '{"drop_pct": 62}',
            "run_id": "run-1",
            "notebook": f"{outputs}/run-1/{bureau}/monitor.ipynb",
            "bureau": bureau,
        }
    )


def build_database(
    url: str,
    rng: np.random.Generator,
    *,
    n_yz: int = 30,
    n_jb: int = 8,
    submitted: int = 4,
    outputs: str = "outputs",
) -> sessionmaker[Session]:
    """Migrate ``url``, add the standard users (+ ``rev_jb``) and tasks; return a factory."""
    upgrade(url)
    factory = session_factory(create_engine(url))
    yz = [f"1{i:09d}" for i in range(n_yz)]
    yz_st = ["YZ-S2" if i < 12 and i % 3 == 2 else "YZ-S1" for i in range(n_yz)]
    jb = [f"2{i:09d}" for i in range(n_jb)]
    with factory() as session:
        add_users(session)
        add_user(session, "rev_jb", "reviewer", "JB")
        city = get_user(session, "city")
        frame = pd.concat(
            [
                findings_for("YZ", yz, yz_st, rng, outputs),
                findings_for("JB", jb, ["JB-S1"] * n_jb, rng, outputs),
            ],
            ignore_index=True,
        )
        tasks_from_findings(session, frame, city)
        session.commit()
    for task_id in submitted_ids(factory, submitted):
        drive(factory, task_id, SUBMIT)
    return factory


def submitted_ids(factory: sessionmaker[Session], k: int) -> list[int]:
    """The ``k`` lowest task ids of station YZ-S1 (driven to ``result_submitted``)."""
    from sqlalchemy import select

    from audit_lib.tasks.models import Task

    with factory() as session:
        stmt = select(Task.id).where(Task.station_id == "YZ-S1").order_by(Task.id).limit(k)
        return list(session.execute(stmt).scalars())


def build_mart(root: Path) -> Path:
    """The tiny two-bureau mart (12 customers each, Jan–Feb 2025)."""
    write_tiny_mart(root)
    return root


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a server the test started; kill it if it does not stop in 30 s."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


HEADLESS_CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Flags for driving Debian's Chromium headless against ``audit serve`` on a closed network
(without the background-networking flags it keeps trying to reach outside hosts)."""
