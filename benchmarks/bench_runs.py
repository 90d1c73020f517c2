"""Benchmark: per-notebook overhead of a run (kernel start, papermill, HTML export, manifest)
against the notebook's own work, for N bureaus on W workers.

The notebook's own work is the sum of its cells' execution times, as papermill records them in
each executed notebook (``metadata.papermill.duration``); the overhead of one bureau is its
manifest's ``duration_s`` minus that sum. By default the notebook is generated here and does a
fixed numpy computation over a customers × days float32 matrix (so the figures do not depend on
the data mart); ``--notebook`` takes a real notebook instead (e.g. notebooks/monitoring.ipynb
with ``--parameters-dir parameters --bureau-list all --mart demo/mart --period 2024-01..2024-12``).

``--monitoring`` runs the real ``notebooks/monitoring.ipynb`` (every theme, tasks raised into
a fresh SQLite task database per repeat; ``--no-tasks`` skips them) over a city made once by
the project's generator — ``--bureaus`` bureaus, ``--customers`` per bureau on average (the
generator splits the city unevenly), ``--days`` days from 2025-01-01 — in
``var/bench/runs-mart-<bureaus>x<customers>x<days>`` (reused when its manifest says the same
configuration), with the repo's parameter files, on ``--workers`` workers, like ``audit run``.
Besides the per-bureau overhead it records CPU seconds (this process and its children: the
bureau processes and their kernels), the load average before and after, and per bureau its
customers, duration, cell time, kernel start and time outside the cells. Two shares are
reported: the time outside the cells over the bureaus' own durations (``overhead_share``, the
issue's target ≤ 10 %), and over the workers' time, wall × workers
(``outside_cells_share_of_worker_time``), which also counts a worker idle at the end of a run.
Cells that only import are the notebook's own work but a cost every fresh kernel pays: their
time is given apart (``imports_s_mean``, ``overhead_share_with_imports``).

Each configuration is run ``--repeats`` times; the medians are printed and written to
``benchmarks/results/runs.json`` (``runs-monitoring.json`` with ``--monitoring``) with the exact
command.

Run: ``.venv/bin/python benchmarks/bench_runs.py [--bureaus 10] [--workers 2]
[--customers 100000] [--days 365] [--repeats 3] [--monitoring [--no-tasks]]
[--keep-outputs DIR]``
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audit_lib.runs.runner import run_notebook  # noqa: E402

WORK = """\
rng = np.random.default_rng(7)
matrix = rng.random((customers, days), dtype=np.float32)
centred = matrix - matrix.mean(axis=1, keepdims=True)
z = centred / (matrix.std(axis=1, keepdims=True) + np.float32(1e-6))
scores = np.abs(z).max(axis=1)
top = np.argsort(scores)[-100:]
print(f"{bureau}: {customers} customers x {days} days, top score {scores[top[-1]]:.3f}")"""


def write_work_notebook(path: Path) -> None:
    """A benchmark notebook: parameters, an import, a fixed numpy computation."""
    params = new_code_cell(
        'bureau: str = "B01"  # bureau\nperiod: str = "2025-01"  # period\n'
        "customers: int = 100000  # rows of the matrix\ndays: int = 365  # columns"
    )
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(
        cells=[
            new_markdown_cell("# Benchmark notebook: a fixed numpy computation"),
            params,
            new_code_cell("import numpy as np"),
            new_code_cell(WORK),
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    nbformat.write(nb, path)


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _imports_only(source: str) -> bool:
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    return bool(body) and all(isinstance(n, ast.Import | ast.ImportFrom) for n in body)


def notebook_times(executed: Path) -> dict[str, float]:
    """From papermill's metadata: cells' own time, kernel start, and the papermill total;
    ``imports_s`` is the part of the cells' time spent in cells that only import (a cost
    every fresh kernel pays)."""
    nb = nbformat.read(executed, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    cells = [c.metadata.get("papermill", {}) for c in code]
    timed = [c for c in cells if c.get("start_time") and c.get("end_time")]
    begin, end = _when(nb.metadata.papermill.start_time), _when(nb.metadata.papermill.end_time)
    first = min(_when(c["start_time"]) for c in timed)
    return {
        "cells_s": sum(float(c.get("duration") or 0.0) for c in cells),
        "imports_s": sum(
            float(m.get("duration") or 0.0)
            for c, m in zip(code, cells, strict=True)
            if _imports_only(c.source)
        ),
        "kernel_start_s": (first - begin).total_seconds(),
        "papermill_s": (end - begin).total_seconds(),
    }


def prepare_city(bureaus: int, customers: int, days: int, seed: int = 7) -> Path:
    """The benchmark city (mart and truth table), generated once and then reused.

    ``customers`` is per bureau on average; a folder whose generator manifest records another
    configuration is generated again.
    """
    import datetime as dt

    from audit_lib.demo.generate import DemoConfig, generate_demo

    config = DemoConfig(
        bureaus=bureaus, customers=bureaus * customers, days=days,
        start=dt.date(2025, 1, 1), seed=seed,
    )  # fmt: skip
    folder = ROOT / "var" / "bench" / f"runs-mart-{bureaus}x{customers}x{days}"
    wanted = json.loads(json.dumps(config.as_dict(), default=str))
    manifest = folder / "manifest.json"
    if manifest.is_file() and json.loads(manifest.read_text()).get("parameters") == wanted:
        print(f"reusing {folder.relative_to(ROOT)}", flush=True)
        return folder
    t0 = time.perf_counter()
    generate_demo(folder, config, jobs=2)
    print(f"generated {folder.relative_to(ROOT)} in {time.perf_counter() - t0:.0f} s", flush=True)
    return folder


def fresh_task_db(work: Path, name: str) -> str:
    """A migrated SQLite task database with the ``system`` user, for one repeat."""
    from audit_lib.db import create_engine, session_factory
    from audit_lib.migrations import upgrade
    from audit_lib.tasks.service import add_user

    url = f"sqlite:///{work / name}"
    upgrade(url)
    engine = create_engine(url)
    with session_factory(engine)() as session:
        add_user(session, "system", "admin")
        session.commit()
    engine.dispose()
    return url


def _cpu() -> float:
    """CPU seconds of this process and of its waited-for children (and theirs)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measure_once(
    args: argparse.Namespace,
    work: Path,
    params_dir: Path,
    bureaus: str,
    parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One run: wall and CPU time, per-bureau durations, cell time and overhead."""
    outputs = Path(args.keep_outputs) if args.keep_outputs else work / "outputs"
    load_before = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), _cpu()
    summary = run_notebook(
        args.notebook,
        bureaus,
        args.period,
        args.workers,
        parameters_dir=params_dir,
        outputs=outputs,
        parameters=parameters,
        mart=args.mart,
        progress=False,
    )
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    if summary.failed:
        raise SystemExit(f"benchmark run failed for {summary.failed}: see {summary.run_dir}")
    per_bureau = [r.duration_s for r in summary.results]
    times = [notebook_times(Path(r.out_dir) / Path(args.notebook).name) for r in summary.results]
    cells = [t["cells_s"] for t in times]
    overhead = [d - c for d, c in zip(per_bureau, cells, strict=True)]
    result: dict[str, Any] = {
        "wall_s": wall,
        "cpu_s": cpu,
        "load_1min_before": load_before,
        "load_1min_after": os.getloadavg()[0],
        "bureau_s_mean": statistics.fmean(per_bureau),
        "cells_s_mean": statistics.fmean(cells),
        "overhead_s_mean": statistics.fmean(overhead),
        "kernel_start_s_mean": statistics.fmean(t["kernel_start_s"] for t in times),
        "outside_papermill_s_mean": statistics.fmean(
            d - t["papermill_s"] for d, t in zip(per_bureau, times, strict=True)
        ),
        "overhead_share": sum(overhead) / sum(per_bureau),
        "imports_s_mean": statistics.fmean(t["imports_s"] for t in times),
        "overhead_share_with_imports": (sum(overhead) + sum(t["imports_s"] for t in times))
        / sum(per_bureau),
        # idle worker time (load imbalance at the end of the run) counted as outside the cells
        "outside_cells_share_of_worker_time": 1 - sum(cells) / (wall * args.workers),
    }
    if args.monitoring:
        result["per_bureau"] = [
            {
                "bureau": r.bureau,
                "customers": args.sizes.get(r.bureau),
                "duration_s": round(d, 3),
                "cells_s": round(t["cells_s"], 3),
                "kernel_start_s": round(t["kernel_start_s"], 3),
                "imports_s": round(t["imports_s"], 3),
                "outside_cells_s": round(d - t["cells_s"], 3),
            }
            for r, d, t in zip(summary.results, per_bureau, times, strict=True)
        ]
    result["run_dir"] = summary.run_dir if args.keep_outputs else None
    return result


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bureaus", type=int, default=10, help="number of bureaus")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--customers", type=int, default=100_000, help="per bureau (on average, --monitoring)"
    )
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--notebook", help="a real notebook instead of the built-in one")
    parser.add_argument("--parameters-dir", help="with --notebook: the parameters folder")
    parser.add_argument("--bureau-list", default="all", help="with --notebook: all or B1,B2")
    parser.add_argument("--period", help="default: 2025-01, or the whole city with --monitoring")
    parser.add_argument("--mart", help="with --notebook: the data mart (passed as `mart`)")
    parser.add_argument(
        "--monitoring", action="store_true", help="notebooks/monitoring.ipynb on a generated city"
    )
    parser.add_argument("--no-tasks", action="store_true", help="with --monitoring: no tasks")
    parser.add_argument("--out", help="results JSON (default: benchmarks/results/runs*.json)")
    parser.add_argument(
        "--keep-outputs", help="keep the run folders (executed notebooks, manifests) here"
    )
    args = parser.parse_args()
    if args.monitoring and args.notebook:
        parser.error("--monitoring runs notebooks/monitoring.ipynb: leave out --notebook")
    args.builtin = args.notebook is None and not args.monitoring
    name = "runs-monitoring.json" if args.monitoring else "runs.json"
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / name
    parameters: dict[str, Any] | None = None
    args.sizes = {}

    with tempfile.TemporaryDirectory(prefix="bench-runs-") as tmp:
        work = Path(tmp)
        if args.monitoring:
            city = prepare_city(args.bureaus, args.customers, args.days)
            generated = json.loads((city / "manifest.json").read_text())
            args.sizes = {b: v["customers"] for b, v in generated["bureaus"].items()}
            args.notebook = str(ROOT / "notebooks" / "monitoring.ipynb")
            args.mart = str(city / "mart")
            args.period = args.period or "2025-01..2025-12"
            params_dir, bureaus = ROOT / "parameters", ",".join(args.sizes)
        elif args.builtin:
            args.notebook = str(work / "bench_work.ipynb")
            write_work_notebook(Path(args.notebook))
            params_dir = work / "parameters"
            (params_dir / "bureaus").mkdir(parents=True)
            for i in range(1, args.bureaus + 1):
                code = f"B{i:02d}"
                (params_dir / "bureaus" / f"{code}.yml").write_text(
                    f"code: {code}\nname_zh: 基准{i}\nname_en: Bench {i}\n", encoding="utf-8"
                )
            bureaus = "all"
            parameters = {"customers": args.customers, "days": args.days}
        else:
            params_dir = Path(args.parameters_dir or "parameters")
            bureaus = args.bureau_list
        args.period = args.period or "2025-01"
        runs = []
        for repeat in range(args.repeats):
            if args.monitoring:
                parameters = (
                    {"create_tasks": False}
                    if args.no_tasks
                    else {"db_url": fresh_task_db(work, f"tasks-{repeat}.db")}
                )
            runs.append(measure_once(args, work, params_dir, bureaus, parameters))

    label = args.notebook
    if args.builtin:
        label = "built-in numpy work"
    elif args.monitoring:
        label = "notebooks/monitoring.ipynb"
    scalars = [k for k, v in runs[0].items() if isinstance(v, float)]
    median = {k: statistics.median(r[k] for r in runs) for k in scalars}
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = {
        "benchmark": "runs-monitoring" if args.monitoring else "runs",
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "notebook": label,
        "bureaus": args.bureaus if args.builtin or args.monitoring else bureaus,
        "workers": args.workers,
        "customers": args.customers if args.builtin or args.monitoring else None,
        "customers_per_bureau": args.sizes or None,
        "days": args.days if args.builtin or args.monitoring else None,
        "period": args.period,
        "tasks": (not args.no_tasks) if args.monitoring else None,
        "repeats": args.repeats,
        "median": _rounded(median),
        "runs": _rounded(runs),
        "peak_rss_mb_largest_child": round(peak_children, 1),
        "peak_rss_mb_self": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    m = result["median"]
    print(
        f"{result['bureaus']} bureaus on {args.workers} workers: wall {m['wall_s']:.1f} s, "
        f"CPU {m['cpu_s']:.1f} s; per bureau {m['bureau_s_mean']:.2f} s = cells "
        f"{m['cells_s_mean']:.2f} s + outside the cells {m['overhead_s_mean']:.2f} s (kernel "
        f"start {m['kernel_start_s_mean']:.2f} s, outside papermill "
        f"{m['outside_papermill_s_mean']:.2f} s); outside-the-cells share "
        f"{m['overhead_share']:.1%} of the bureaus' time ({m['overhead_share_with_imports']:.1%} "
        f"counting the import cells, {m['imports_s_mean']:.2f} s), "
        f"{m['outside_cells_share_of_worker_time']:.1%} of the workers' time; load "
        f"{m['load_1min_before']:.1f} → {m['load_1min_after']:.1f}; peak RSS (largest child) "
        f"{result['peak_rss_mb_largest_child']} MB → {out}"
    )


if __name__ == "__main__":
    main()
