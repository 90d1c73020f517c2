"""Benchmark: audit tasks from findings (SQLite and PostgreSQL) and transitions per second (PG).

Cases (issue 4):

* ``intake``: 100,000 tasks (one finding each, plus a second theme on a fifth of them) created
  by :func:`audit_lib.tasks.service.tasks_from_findings` in one transaction, commit included,
  on a fresh SQLite file and a fresh PostgreSQL database. Target ≤ 10 s.
* ``transitions``: 20 worker processes on PostgreSQL, each driving its own share of tasks
  through dispatch → accept → submit result → start review → approve (one transaction per
  action, audit log included). Target ≥ 500 transitions/s sustained.

The machine is shared: the 1-minute load average is recorded beside each figure. PostgreSQL
from ``AUDIT_BENCH_PG_URL`` (default the local server ``postgresql+psycopg://postgres@127.0.0.1:5432/test``;
a database with a random name is created and dropped per run).

Run: ``.venv/bin/python benchmarks/bench_tasks.py [--runs 3] [--tasks 100000] [--workers 20]
[--per-worker 150] [--cases intake,transitions] [--backends sqlite,pg]``
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audit_lib.db import create_engine, session_factory  # noqa: E402
from audit_lib.migrations import upgrade  # noqa: E402
from audit_lib.tasks.service import (  # noqa: E402
    act,
    add_user,
    commit_or_conflict,
    get_user,
    tasks_from_findings,
)

RESULTS = ROOT / "benchmarks" / "results" / "tasks.json"
WORK = ROOT / "var" / "bench" / "tasks"
PG_URL = os.environ.get("AUDIT_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
STEPS = [
    ("dispatch", "aud", None),
    ("accept", "han", None),
    ("submit_result", "han", "no_problem"),
    ("start_review", "rev", None),
    ("approve", "rev", None),
]


def findings(n_tasks: int, seed: int = 7) -> pd.DataFrame:
    """``n_tasks`` customers with one finding each, a fifth with a second theme."""
    rng = np.random.default_rng(seed)
    cust = np.concatenate([np.arange(n_tasks), np.arange(0, n_tasks, 5)])
    theme = np.where(np.arange(len(cust)) < n_tasks, "zero_consumption", "theft_suspicion")
    entity = pd.Series((5_000_000_000 + cust).astype(str), dtype=object)
    n = len(cust)
    score = rng.random(n)
    return pd.DataFrame(
        {
            "finding_id": entity + ":" + pd.Series(theme, dtype=object) + ":2024-03",
            "theme_id": theme,
            "theme_version": np.int32(1),
            "entity": entity,
            "entity_kind": "customer",
            "station_id": "S" + pd.Series((cust % 40).astype(str), dtype=object),
            "area_id": "A" + pd.Series((cust % 900).astype(str), dtype=object),
            "period_start": pd.Timestamp("2024-03-01"),
            "period_end": pd.Timestamp("2024-03-31"),
            "score": score,
            "severity": np.where(score > 0.8, "high", "medium"),
            "kwh_at_risk": rng.random(n) * 500,
            "money_at_risk": rng.random(n) * 300,
            "reason_zh": "连续零电量",
            "reason_en": "zero consumption",
            "evidence": '{"days": 30}',
            "run_id": "bench",
            "notebook": "outputs/bench/YZ/monitor.ipynb",
            "bureau": "YZ",
        }
    )


def new_database(backend: str) -> tuple[str, str | None]:
    """A fresh, migrated database: (url, name of the PG database to drop or None)."""
    if backend == "sqlite":
        WORK.mkdir(parents=True, exist_ok=True)
        path = WORK / f"bench-{uuid.uuid4().hex[:8]}.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        return url, None
    name = f"audit_bench_{uuid.uuid4().hex[:10]}"
    admin = sa_create_engine(make_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    return url, name


def drop_database(url: str, name: str | None) -> None:
    """Remove the benchmark database."""
    if name is None:
        db = make_url(url).database
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        return
    admin = sa_create_engine(make_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def add_bench_users(url: str) -> None:
    """An auditor, a bureau-wide handler and a reviewer of bureau YZ."""
    engine = create_engine(url)
    with session_factory(engine)() as s:
        add_user(s, "aud", "bureau_auditor", "YZ")
        add_user(s, "han", "station_handler", "YZ")
        add_user(s, "rev", "reviewer", "YZ")
        commit_or_conflict(s)
    engine.dispose()


def bench_intake(backend: str, n_tasks: int) -> dict[str, float]:
    """One timed intake of ``n_tasks`` tasks on a fresh database."""
    url, name = new_database(backend)
    try:
        add_bench_users(url)
        frame = findings(n_tasks)
        engine = create_engine(url)
        load = os.getloadavg()[0]
        with session_factory(engine)() as s:
            t0, c0 = time.perf_counter(), time.process_time()
            result = tasks_from_findings(s, frame, get_user(s, "aud"))
            commit_or_conflict(s)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        engine.dispose()
        assert result.tasks_created == n_tasks, result
        return {"seconds": seconds, "cpu_s": cpu, "findings": float(len(frame)), "load_1min": load}
    finally:
        drop_database(url, name)


def backend_cpu(pid: int) -> float | None:
    """CPU seconds of a local PostgreSQL backend process (None if it is not on this machine)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _worker(url: str, ids: list[int], start: float) -> tuple[int, float, float | None]:
    """Drive ``ids`` through STEPS; (transitions, client CPU s, server backend CPU s)."""
    engine = create_engine(url, pool_size=1, pool_pre_ping=False)
    factory = session_factory(engine)
    with engine.connect() as conn:
        pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    while time.time() < start:
        time.sleep(0.001)
    done, cpu0, server0 = 0, time.process_time(), backend_cpu(pid)
    for tid in ids:
        for action, user, outcome in STEPS:
            with factory() as s:
                act(s, tid, action, user, outcome=outcome)
                commit_or_conflict(s)
                done += 1
    server1 = backend_cpu(pid)
    server = None if server0 is None or server1 is None else server1 - server0
    engine.dispose()
    return done, time.process_time() - cpu0, server


def bench_transitions(workers: int, per_worker: int) -> dict[str, Any]:
    """20 processes, disjoint task shares, every action its own transaction."""
    url, name = new_database("pg")
    try:
        add_bench_users(url)
        engine = create_engine(url)
        with session_factory(engine)() as s:
            ids = tasks_from_findings(
                s, findings(workers * per_worker), get_user(s, "aud")
            ).task_ids
            commit_or_conflict(s)
        engine.dispose()
        shares = [ids[i::workers] for i in range(workers)]
        load = os.getloadavg()[0]
        start = time.time() + 3.0  # let every worker import and connect first
        with mp.get_context("fork").Pool(workers) as pool:
            counts = pool.starmap(_worker, [(url, share, start) for share in shares])
        seconds = time.time() - start
        total = sum(n for n, _, _ in counts)
        cpu_ms = 1000 * sum(c for _, c, _ in counts) / max(total, 1)
        servers = [s for _, _, s in counts if s is not None]
        server_ms = 1000 * sum(servers) / max(total, 1) if len(servers) == len(counts) else None
        return {
            "transitions": float(total),
            "seconds": seconds,
            "per_second": total / seconds,
            "client_cpu_ms_per_transition": cpu_ms,
            "server_cpu_ms_per_transition": server_ms,
            "load_1min": load,
        }
    finally:
        drop_database(url, name)


def main() -> None:
    """Run the cases, print the figures, write ``benchmarks/results/tasks.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--per-worker", type=int, default=150)
    parser.add_argument("--cases", default="intake,transitions")
    parser.add_argument("--backends", default="sqlite,pg")
    args = parser.parse_args()
    out: dict[str, object] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    command = " ".join(["benchmarks/bench_tasks.py", *sys.argv[1:]])
    out |= {"cpus": os.cpu_count()}  # the cases not run keep their earlier figures
    out.pop("command", None)
    if "intake" in args.cases:
        for backend in args.backends.split(","):
            runs = [bench_intake(backend, args.tasks) for _ in range(args.runs)]
            secs = [r["seconds"] for r in runs]
            out[f"intake_{backend}"] = {
                "command": command,
                "tasks": args.tasks,
                "findings": runs[0]["findings"],
                "median_s": statistics.median(secs),
                "runs_s": secs,
                "target_s": 10.0,
                "load_1min": [r["load_1min"] for r in runs],
                "client_cpu_s": [r["cpu_s"] for r in runs],
            }
            print(
                f"intake {backend}: {args.tasks} tasks, median {statistics.median(secs):.2f} s "
                f"(runs {', '.join(f'{x:.2f}' for x in secs)})",
                flush=True,
            )
    if "transitions" in args.cases:
        moves = [bench_transitions(args.workers, args.per_worker) for _ in range(args.runs)]
        rates = [r["per_second"] for r in moves]
        out["transitions_pg"] = {
            "command": command,
            "workers": args.workers,
            "transitions_per_run": moves[0]["transitions"],
            "median_per_s": statistics.median(rates),
            "runs_per_s": rates,
            "target_per_s": 500.0,
            "load_1min": [r["load_1min"] for r in moves],
            "client_cpu_ms_per_transition": [r["client_cpu_ms_per_transition"] for r in moves],
            "server_cpu_ms_per_transition": [r["server_cpu_ms_per_transition"] for r in moves],
        }
        print(
            f"transitions pg: {args.workers} workers, median {statistics.median(rates):.0f}/s "
            f"(runs {', '.join(f'{x:.0f}' for x in rates)})",
            flush=True,
        )
    out["peak_rss_mb_parent"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["peak_rss_mb_children"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"peak RSS {out['peak_rss_mb_parent']:.0f} MB; written {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
