"""Benchmark: ``audit demo-data`` at the demo size and at a million customers.

Runs the real command line in a child process per run and measures wall time (median of
``--runs``), CPU seconds and the peak RSS of the largest process (``os.wait4`` rusage of the
command — the figure ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` gives — and, for the
bureau workers, which a fork server starts, psutil samples every 0.2 s), and the peak of the
whole process tree's RSS (sampled). The machine is shared: the 1-minute load average before and after each run is
recorded beside the figures. Results go to ``benchmarks/results/generate.json``.

Cases (issue 2): ``small`` = 20,000 customers × 730 days (target ≤ 15 s),
``big`` = 1,000,000 customers × 365 days (target ≤ 120 s and ≤ 8 GB).

Run: ``.venv/bin/python benchmarks/bench_generate.py [--cases small,big] [--runs 3]
[--big-runs 1] [--jobs 2]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "var" / "bench" / "generate"
RESULTS = ROOT / "benchmarks" / "results" / "generate.json"
CASES = {
    "small": {"customers": 20_000, "days": 730, "target_s": 15.0, "target_rss_mb": None},
    "big": {"customers": 1_000_000, "days": 365, "target_s": 120.0, "target_rss_mb": 8192.0},
}


def sample_tree(proc: psutil.Process, cpu: dict[int, float], rss: dict[int, int]) -> int:
    """Sample ``proc`` and its descendants: update per-process CPU seconds and peak RSS.

    Returns the resident bytes of the whole tree now. Workers started through a fork
    server are descendants but not waited for by the command, so ``wait4`` alone would miss
    them; sampling every 0.2 s sees them (CPU of a worker's last 0.2 s may be missed).
    """
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # a worker may exit meanwhile
            times = p.cpu_times()
            mem = p.memory_info().rss
            cpu[p.pid] = times.user + times.system
            rss[p.pid] = max(rss.get(p.pid, 0), mem)
            total += mem
    return total


def run_once(args: list[str]) -> dict[str, float]:
    """Run the command once; return seconds, CPU seconds, peak RSS (largest process, tree)."""
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    child = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL)
    proc = psutil.Process(child.pid)
    peak_tree = 0
    cpu: dict[int, float] = {}
    rss: dict[int, int] = {}
    while True:
        peak_tree = max(peak_tree, sample_tree(proc, cpu, rss))
        pid, code, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            child.returncode = os.waitstatus_to_exitcode(code)
            break
        time.sleep(0.2)
    seconds = time.perf_counter() - t0
    if child.returncode:
        raise SystemExit(f"command failed ({child.returncode}): {' '.join(args)}")
    cpu[child.pid] = usage.ru_utime + usage.ru_stime  # exact for the command itself
    rss[child.pid] = max(rss.get(child.pid, 0), usage.ru_maxrss * 1024)  # Linux: kB
    return {
        "seconds": seconds,
        "cpu_seconds": sum(cpu.values()),
        "peak_rss_mb": max(rss.values()) / 2**20,
        "peak_tree_rss_mb": peak_tree / 2**20,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


def bench_case(name: str, runs: int, jobs: int, bureaus: int) -> dict[str, object]:
    """Run one case ``runs`` times; summarise."""
    case = CASES[name]
    cli = [
        "demo-data", "--out", str(OUT / name), "--bureaus", str(bureaus),
        "--customers", str(case["customers"]), "--days", str(case["days"]),
        "--start", "2024-01-01", "--seed", "7", "--jobs", str(jobs),
    ]  # fmt: skip
    results = []
    for i in range(runs):
        r = run_once([sys.executable, "-m", "audit_lib.cli", *cli])
        print(f"{name} run {i + 1}/{runs}: {r['seconds']:.1f} s (CPU {r['cpu_seconds']:.1f} s), peak RSS {r['peak_rss_mb']:.0f} MB "
              f"(tree {r['peak_tree_rss_mb']:.0f} MB), load {r['load_before']:.1f}→{r['load_after']:.1f}")  # fmt: skip
        results.append(r)
    manifest = json.loads((OUT / name / "manifest.json").read_text())
    shutil.rmtree(OUT / name, ignore_errors=True)
    return {
        "customers": case["customers"],
        "days": case["days"],
        "bureaus": bureaus,
        "jobs": jobs,
        "runs": runs,
        "median_seconds": round(statistics.median(r["seconds"] for r in results), 2),
        "all_seconds": [round(r["seconds"], 2) for r in results],
        "median_cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in results), 2),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in results), 1),
        "peak_tree_rss_mb": round(max(r["peak_tree_rss_mb"] for r in results), 1),
        "load_avg_1min": [[round(r["load_before"], 2), round(r["load_after"], 2)] for r in results],
        "target_seconds": case["target_s"],
        "target_rss_mb": case["target_rss_mb"],
        "readings_rows": manifest["rows"]["readings"],
        "truth_rows": manifest["truth_rows"],
        "command": "audit " + " ".join(cli).replace(str(ROOT) + os.sep, ""),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="small,big")
    parser.add_argument("--runs", type=int, default=3, help="runs of the small case")
    parser.add_argument("--big-runs", type=int, default=1, help="runs of the big case")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--bureaus", type=int, default=5)
    opts = parser.parse_args()
    report: dict[str, object] = {
        "benchmark": "demo_data",
        "cpus": os.cpu_count(),
        "command": "python benchmarks/bench_generate.py " + " ".join(sys.argv[1:]),
    }
    if RESULTS.exists():  # keep cases not re-run this time
        report = {**json.loads(RESULTS.read_text()), **report}
    for name in opts.cases.split(","):
        runs = opts.big_runs if name == "big" else opts.runs
        report[name] = bench_case(name, runs, opts.jobs, opts.bureaus)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
