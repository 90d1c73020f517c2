"""Benchmark: SG186-shaped source → mart with ``audit ingest`` (and writing the source), and
the reconciliation of the mart with the source (``audit dq --source``).

Generates one bureau of demo data (``--customers`` × ``--days``), writes it to a SQLite
source with :func:`audit_lib.data.source.write_source`, then ingests it into a fresh mart
several times (median; wall and CPU seconds, rows per second, peak RSS), reconciles the
last mart with the source as many times (:func:`audit_lib.data.reconcile.reconcile`; it must
find no difference) and writes ``benchmarks/results/ingest.json``.

Run: ``.venv/bin/python benchmarks/bench_ingest.py [--customers N] [--days N] [--runs N]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audit_lib.data.access import Mart  # noqa: E402
from audit_lib.data.ingest import ingest  # noqa: E402
from audit_lib.data.reconcile import reconcile  # noqa: E402
from audit_lib.data.source import write_source  # noqa: E402
from audit_lib.demo.generate import DemoConfig, generate_bureau  # noqa: E402
from audit_lib.demo.generate.writer import city_tables  # noqa: E402


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = ROOT / "var" / "bench" / f"ingest-{args.customers}x{args.days}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    config = DemoConfig(
        bureaus=1, customers=args.customers, days=args.days, start=dt.date(2024, 1, 1), seed=5
    )
    tables = {k: v for k, v in generate_bureau(config, 0).items() if k != "truth"}
    url = f"sqlite:///{work / 'sg186.db'}"
    t0, c0 = time.perf_counter(), _cpu()
    written = write_source(url, {**city_tables(1), **tables})
    write_s, write_cpu = time.perf_counter() - t0, _cpu() - c0
    rows = sum(written.values())
    print(f"write_source: {rows:,} rows in {write_s:.1f} s ({write_cpu:.1f} s CPU)")
    runs = []
    for i in range(args.runs):
        mart = work / f"mart-{i}"
        t0, c0 = time.perf_counter(), _cpu()
        report = ingest(url, mart)
        runs.append((time.perf_counter() - t0, _cpu() - c0, report.read, report.rejected))
        print(f"ingest run {i + 1}: {runs[-1][0]:.1f} s wall, {runs[-1][1]:.1f} s CPU")
    wall = statistics.median(r[0] for r in runs)
    checks = []
    for i in range(args.runs):
        with Mart(mart) as m:
            t0, c0 = time.perf_counter(), _cpu()
            differ = len(reconcile(url, m))
            checks.append((time.perf_counter() - t0, _cpu() - c0))
        if differ:
            raise SystemExit(f"reconcile found {differ} differences right after the ingest")
        print(f"reconcile run {i + 1}: {checks[-1][0]:.1f} s wall, {checks[-1][1]:.1f} s CPU")
    result = {
        "benchmark": "ingest",
        "customers": args.customers,
        "days": args.days,
        "source_rows": rows,
        "write_source_seconds": write_s,
        "write_source_cpu_seconds": write_cpu,
        "runs": args.runs,
        "ingest_median_seconds": wall,
        "ingest_median_cpu_seconds": statistics.median(r[1] for r in runs),
        "ingest_rows_per_second": runs[0][2] / wall,
        "rows_read": runs[0][2],
        "reconcile_median_seconds": statistics.median(c[0] for c in checks),
        "reconcile_median_cpu_seconds": statistics.median(c[1] for c in checks),
        "rows_rejected": runs[0][3],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "load_avg_1m": os.getloadavg()[0],
        "cpu_count": os.cpu_count(),
        "command": "python benchmarks/bench_ingest.py " + " ".join(sys.argv[1:]),
    }
    print(json.dumps(result, indent=2))
    out = ROOT / "benchmarks" / "results" / "ingest.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
