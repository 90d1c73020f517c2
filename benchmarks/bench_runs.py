"""Benchmark: per-notebook overhead of a run (kernel start, papermill, HTML export, manifest)
against the notebook's own work, for N bureaus on W workers.

The notebook's own work is the sum of its cells' execution times, as papermill records them in
each executed notebook (``metadata.papermill.duration``); the overhead of one bureau is its
manifest's ``duration_s`` minus that sum. By default the notebook is generated here and does a
fixed numpy computation over a customers × days float32 matrix (so the figures do not depend on
the data mart); ``--notebook`` takes a real notebook instead (e.g. notebooks/monitoring.ipynb
with ``--parameters-dir parameters --bureau-list all --mart demo/mart --period 2024-01..2024-12``).

Each configuration is run ``--repeats`` times; the medians are printed and written to
``benchmarks/results/runs.json`` with the exact command.

Run: ``.venv/bin/python benchmarks/bench_runs.py [--bureaus 10] [--workers 2]
[--customers 100000] [--days 365] [--repeats 3]``
"""

from __future__ import annotations

import argparse
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


def notebook_times(executed: Path) -> dict[str, float]:
    """From papermill's metadata: cells' own time, kernel start, and the papermill total."""
    nb = nbformat.read(executed, as_version=4)
    cells = [c.metadata.get("papermill", {}) for c in nb.cells if c.cell_type == "code"]
    timed = [c for c in cells if c.get("start_time") and c.get("end_time")]
    begin, end = _when(nb.metadata.papermill.start_time), _when(nb.metadata.papermill.end_time)
    first = min(_when(c["start_time"]) for c in timed)
    return {
        "cells_s": sum(float(c.get("duration") or 0.0) for c in cells),
        "kernel_start_s": (first - begin).total_seconds(),
        "papermill_s": (end - begin).total_seconds(),
    }


def measure_once(
    args: argparse.Namespace, work: Path, params_dir: Path, bureaus: str
) -> dict[str, Any]:
    """One run: wall time, per-bureau durations, cell time and overhead."""
    outputs = work / "outputs"
    t0 = time.perf_counter()
    summary = run_notebook(
        args.notebook,
        bureaus,
        args.period,
        args.workers,
        parameters_dir=params_dir,
        outputs=outputs,
        parameters={"customers": args.customers, "days": args.days} if args.builtin else None,
        mart=args.mart,
        progress=False,
    )
    wall = time.perf_counter() - t0
    if summary.failed:
        raise SystemExit(f"benchmark run failed for {summary.failed}: see {summary.run_dir}")
    per_bureau = [r.duration_s for r in summary.results]
    times = [notebook_times(Path(r.out_dir) / Path(args.notebook).name) for r in summary.results]
    cells = [t["cells_s"] for t in times]
    overhead = [d - c for d, c in zip(per_bureau, cells, strict=True)]
    return {
        "wall_s": wall,
        "bureau_s_mean": statistics.fmean(per_bureau),
        "cells_s_mean": statistics.fmean(cells),
        "overhead_s_mean": statistics.fmean(overhead),
        "kernel_start_s_mean": statistics.fmean(t["kernel_start_s"] for t in times),
        "outside_papermill_s_mean": statistics.fmean(
            d - t["papermill_s"] for d, t in zip(per_bureau, times, strict=True)
        ),
        "overhead_share": sum(overhead) / sum(per_bureau),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bureaus", type=int, default=10, help="number of bureaus (built-in)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--notebook", help="a real notebook instead of the built-in one")
    parser.add_argument("--parameters-dir", help="with --notebook: the parameters folder")
    parser.add_argument("--bureau-list", default="all", help="with --notebook: all or B1,B2")
    parser.add_argument("--period", default="2025-01")
    parser.add_argument("--mart", help="with --notebook: the data mart (passed as `mart`)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "runs.json"))
    args = parser.parse_args()
    args.builtin = args.notebook is None

    with tempfile.TemporaryDirectory(prefix="bench-runs-") as tmp:
        work = Path(tmp)
        if args.builtin:
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
        else:
            params_dir = Path(args.parameters_dir or "parameters")
            bureaus = args.bureau_list
        runs = [measure_once(args, work, params_dir, bureaus) for _ in range(args.repeats)]

    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = {
        "benchmark": "runs",
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "notebook": "built-in numpy work" if args.builtin else args.notebook,
        "bureaus": args.bureaus if args.builtin else bureaus,
        "workers": args.workers,
        "customers": args.customers if args.builtin else None,
        "days": args.days if args.builtin else None,
        "repeats": args.repeats,
        "median": {k: round(v, 3) for k, v in median.items()},
        "runs": [{k: round(v, 3) for k, v in r.items()} for r in runs],
        "peak_rss_mb_largest_child": round(peak_children, 1),
        "peak_rss_mb_self": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    m = result["median"]
    print(
        f"{result['bureaus']} bureaus on {args.workers} workers: wall {m['wall_s']:.1f} s; per "
        f"bureau {m['bureau_s_mean']:.2f} s = cells {m['cells_s_mean']:.2f} s + overhead "
        f"{m['overhead_s_mean']:.2f} s (kernel start {m['kernel_start_s_mean']:.2f} s, outside "
        f"papermill {m['outside_papermill_s_mean']:.2f} s); overhead share {m['overhead_share']:.1%}; "
        f"peak RSS (largest child) {result['peak_rss_mb_largest_child']} MB → {out}"
    )


if __name__ == "__main__":
    main()
