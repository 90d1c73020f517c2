"""Benchmark: the review app with 100,000 tasks in the database (issue 6).

Figures (targets of the issue):

* ``ready_s``: ``ReviewApp`` built for a reviewer whose scope holds all the tasks (widgets,
  filter choices, first page) — target ≤ 3 s;
* ``filter_ms``: one filter/sort/page change (state, theme, minimum priority, overdue, sort,
  next page), each a count + one page query — target ≤ 300 ms;
* ``action_ms``: a review action clicked (``act`` + commit + audit log + task view and inbox
  refreshed) — target ≤ 200 ms;
* with ``--browser``: ``page_ready_s``, from navigation to the inbox's first row in Chromium
  through ``audit serve``, whose kernel manager hands the page a kernel started and warmed
  in advance (each visit waits until the pool holds one again), and ``page_ready_cold_s``,
  the same with the pool off (``AUDIT_UI_POOL_SIZE=0``: a kernel started per page, what a
  user gets when the pool is empty). ``*_server_cpu_s``: CPU seconds of the server and its
  kernels per visit (less sensitive to the machine's load than the wall time).

Tasks come from ``bench_tasks.findings`` (one bureau, 100,000 customers, a fifth with two
themes) through the real intake, on a fresh SQLite file. Medians of ``--runs``; peak RSS and
the 1-minute load average (the machine is shared) are recorded beside.

Run: ``.venv/bin/python benchmarks/bench_ui.py [--tasks 100000] [--runs 5] [--browser]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))  # the browser flags the tests use

import psutil  # noqa: E402
from bench_tasks import findings  # noqa: E402
from sqlalchemy import select  # noqa: E402
from ui_fixtures import HEADLESS_CHROMIUM_ARGS  # noqa: E402

from audit_lib.db import create_engine, session_factory  # noqa: E402
from audit_lib.migrations import upgrade  # noqa: E402
from audit_lib.tasks.models import Task  # noqa: E402
from audit_lib.tasks.service import (  # noqa: E402
    act,
    add_user,
    commit_or_conflict,
    get_user,
    tasks_from_findings,
)
from audit_lib.ui.apps.review import ReviewApp  # noqa: E402
from audit_lib.ui.server.serve import POOL_SIZE_ENV, issue_tokens  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "ui.json"
WORK = ROOT / "var" / "bench" / "ui"
SUBMITTED = 40


def build(n_tasks: int) -> str:
    """A fresh SQLite database with ``n_tasks`` tasks, some submitted for review."""
    WORK.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{WORK / f'ui-{uuid.uuid4().hex[:8]}.db'}"
    upgrade(url)
    factory = session_factory(create_engine(url))
    with factory() as s:
        add_user(s, "city", "city_auditor")
        add_user(s, "aud", "bureau_auditor", "YZ")
        add_user(s, "han", "station_handler", "YZ", "S1")
        add_user(s, "rev", "reviewer", "YZ")
        s.commit()
        tasks_from_findings(s, findings(n_tasks), get_user(s, "city"))
        s.commit()
    with factory() as s:
        stmt = select(Task.id).where(Task.station_id == "S1").order_by(Task.id).limit(SUBMITTED)
        s1 = list(s.execute(stmt).scalars())
    for task_id in s1:
        for action, user, outcome in (("dispatch", "aud", None), ("accept", "han", None),
                                      ("submit_result", "han", "no_problem")):  # fmt: skip
            with factory() as s:
                act(s, task_id, action, user, outcome=outcome)
                commit_or_conflict(s)
    return url


def timed(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_widgets(url: str, runs: int) -> dict[str, Any]:
    factory = session_factory(create_engine(url))
    ready = [timed(lambda: ReviewApp(factory, "rev")) for _ in range(runs)]
    app = ReviewApp(factory, "rev")
    assert app.page is not None and app.page.total > 0, "the reviewer sees no task"
    in_scope = app.page.total
    changes: list[tuple[Any, str, Any]] = [
        (app.state_filter, "value", "result_submitted"),
        (app.state_filter, "value", None),
        (app.theme_filter, "value", "theft_suspicion"),
        (app.theme_filter, "value", None),
        (app.priority_filter, "value", 150.0),
        (app.priority_filter, "value", 0.0),
        (app.overdue_filter, "value", True),
        (app.overdue_filter, "value", False),
        (app.sort_by, "value", "money_at_risk"),
        (app.sort_by, "value", "priority"),
    ]
    filt: list[float] = []
    for _ in range(max(1, runs // 2)):
        for widget, attr, value in changes:
            filt.append(timed(lambda w=widget, a=attr, v=value: setattr(w, a, v)))
        filt.append(timed(app.next.click))
        filt.append(timed(app.prev.click))
    app.state_filter.value = "result_submitted"
    todo = [r["id"] for r in app.page.rows]
    actions: list[float] = []
    if not todo:
        raise SystemExit("no submitted task to review: the benchmark data are wrong")
    for task_id in todo[: SUBMITTED // 2]:
        app.open_task(task_id)
        actions.append(timed(app.buttons["start_review"].click))
        app.comment.value = "benchmark"
        actions.append(timed(app.buttons["approve"].click))
        assert app.task is not None and app.task["state"] == "approved", app.status.value
    return {
        "tasks_in_scope": in_scope,
        "ready_s": round(statistics.median(ready), 3),
        "filter_ms": round(1000 * statistics.median(filt), 1),
        "filter_max_ms": round(1000 * max(filt), 1),
        "action_ms": round(1000 * statistics.median(actions), 1),
        "action_max_ms": round(1000 * max(actions), 1),
        "n_filter": len(filt),
        "n_actions": len(actions),
    }


def _tree_cpu(proc: psutil.Process) -> float:
    """CPU seconds of ``proc`` and its children, live and finished (kernels included)."""
    t = proc.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in proc.children(recursive=True):
        try:
            c = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += c.user + c.system
    return float(total)


def _pooled(log: Path, app: str) -> int:
    """Warmed kernels of ``app`` waiting in the pool, according to the server log."""
    text = log.read_text(encoding="utf-8", errors="replace")
    return text.count(f"ready in the pool of {app}") - text.count(f"taken from the pool of {app}")


def _time_pages(
    cmd: list[str], env: dict[str, str], sign_in: str, page_path: str, runs: int, *, pool: bool
) -> dict[str, list[float]]:
    """Start ``audit serve``, then time ``runs`` visits from navigation to the inbox's first row.

    With ``pool``, each visit waits until a warmed kernel is back in the pool (a user who
    arrives while it is being replaced gets a kernel started on demand: the cold figure).
    Returns wall seconds, server-side CPU seconds (server + kernels) and load per visit.
    """
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("--browser needs Debian's chromium (make sysdeps)")
    port = cmd[cmd.index("--port") + 1]
    base = f"http://127.0.0.1:{port}"
    log = WORK / f"serve-{port}-{'pool' if pool else 'cold'}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    server = psutil.Process(proc.pid)
    out_: dict[str, list[float]] = {"wall": [], "cpu": [], "load": []}
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{base}/voila/static/voila.js", timeout=5)
                break
            except OSError:
                time.sleep(1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=HEADLESS_CHROMIUM_ARGS)
            page = browser.new_context().new_page()
            page.goto(base + sign_in)
            for _ in range(runs):
                page.goto("about:blank")  # leaving the app shuts its kernel down
                for _ in range(600):
                    if not pool or _pooled(log, "task_review") > 0:
                        break
                    time.sleep(0.5)
                time.sleep(1)
                cpu = _tree_cpu(server)
                t = time.perf_counter()
                page.goto(base + page_path, wait_until="commit", timeout=300_000)
                page.locator(".audit-inbox option").first.wait_for(timeout=300_000)
                out_["wall"].append(time.perf_counter() - t)
                out_["cpu"].append(_tree_cpu(server) - cpu)
                out_["load"].append(os.getloadavg()[0])
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return out_


def bench_browser(url: str, runs: int) -> dict[str, Any]:
    """``audit serve`` with its pool of warmed kernels, and with kernels started per page."""
    factory = session_factory(create_engine(url))
    tokens_file = WORK / "tokens.json"
    token = {n: t for t, n in issue_tokens(factory, tokens_file).items()}["rev"]
    port = str(18000 + os.getpid() % 1000)
    serve = [sys.executable, "-m", "audit_lib.cli", "serve", "--port", port, "--db", url,
             "--tokens", str(tokens_file)]  # fmt: skip
    app = "/voila/render/task_review/task_review.ipynb"
    out: dict[str, Any] = {}
    for name, pool_size in (("page_ready", "1"), ("page_ready_cold", "0")):
        got = _time_pages(
            serve, {POOL_SIZE_ENV: pool_size}, f"/?token={token}", app, runs, pool=pool_size != "0"
        )
        out |= {
            f"{name}_s": round(statistics.median(got["wall"]), 2),
            f"{name}_all_s": [round(t, 2) for t in got["wall"]],
            f"{name}_server_cpu_s": round(statistics.median(got["cpu"]), 2),
            f"{name}_load_1min": [round(x, 2) for x in got["load"]],
        }
    return out


def main() -> None:
    """Build the database, run the cases, print and write ``benchmarks/results/ui.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--browser", action="store_true", help="also time the page in Chromium")
    args = parser.parse_args()
    t = time.perf_counter()
    url = build(args.tasks)
    out: dict[str, Any] = {
        "command": " ".join(["benchmarks/bench_ui.py", *sys.argv[1:]]),
        "tasks": args.tasks,
        "build_s": round(time.perf_counter() - t, 1),
        "load_1min_before": os.getloadavg()[0],
    }
    out |= bench_widgets(url, args.runs)
    if args.browser:
        out |= bench_browser(url, max(1, args.runs // 2 + 1))
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out["load_1min_after"] = os.getloadavg()[0]
    out["targets"] = {"ready_s": 3.0, "filter_ms": 300, "action_ms": 200}
    print(json.dumps(out, indent=2, ensure_ascii=False))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
