"""Benchmark: build the customers × days matrix for one bureau from the mart.

Writes (once, cached under ``var/bench/matrix-mart-<layout>-…``; a new mart file layout gets a
new ``LAYOUT`` so a stale cache is not measured) a mart with one bureau of 1,000,000
customers and 365 days of readings (365 M rows, customer-major within each month, ~2 %
missing), then times :func:`audit_lib.data.matrix.build_matrix` (median of several runs,
each in a fresh process so peak RSS is per build) and writes ``benchmarks/results/matrix.json``.

Run: ``.venv/bin/python benchmarks/bench_matrix.py [--customers N] [--days N] [--runs N]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audit_lib.data.mart import write_table  # noqa: E402
from audit_lib.data.schema import CUSTOMERS, READINGS  # noqa: E402

BUREAU = "BM"
LAYOUT = "v2"  # mart files written by audit_lib.data.mart.parquet_options (plain kWh)
START = "2025-01-01"


def write_mart(mart: Path, customers: int, days: int, seed: int = 1) -> None:
    """Write the benchmark mart (customers table + readings) with pyarrow."""
    rng = np.random.default_rng(seed)
    cons = pa.array(np.char.add("50", np.char.zfill(np.arange(customers).astype(str), 8)))
    n = customers
    cust = pa.table(
        {
            "cons_no": cons,
            "name": pa.array(["*"] * n),
            "phone": pa.nulls(n, pa.string()),
            "id_no": pa.nulls(n, pa.string()),
            "station_id": pa.array(["BM-S01"] * n),
            "area_id": pa.array(["BM-A0001"] * n),
            "cust_class": pa.array(["residential"] * n),
            "industry": pa.array(["urban_household"] * n),
            "tariff_code": pa.array(["RES-T"] * n),
            "voltage_kv": pa.array(np.full(n, 0.22)),
            "capacity_kva": pa.array(np.full(n, 8.0)),
            "status": pa.array(["active"] * n),
            "open_date": pa.array(np.full(n, np.datetime64("2010-01-01", "D"))),
            "close_date": pa.nulls(n, pa.date32()),
            "bureau": pa.array([BUREAU] * n),
        }
    )
    write_table(mart, CUSTOMERS, cust)
    dates = pd.date_range(START, periods=days, freq="D")
    for month, idx in pd.Series(range(days), index=dates).groupby(dates.to_period("M")):
        d = dates[idx.to_numpy()].to_numpy().astype("datetime64[D]")
        rows = np.repeat(np.arange(n, dtype=np.int64), len(d))
        kwh = rng.gamma(2.0, 4.0, size=rows.size).astype(np.float32)
        kwh[rng.random(rows.size) < 0.02] = np.nan
        table = pa.table(
            {
                "cons_no": cons.take(pa.array(rows)),
                "date": pa.array(np.tile(d, n)),
                "kwh": pa.array(kwh, from_pandas=True),
                "bureau": pa.array([BUREAU] * rows.size),
                "month": pa.array([str(month)] * rows.size),
            }
        )
        write_table(mart, READINGS, table)
        del table, rows, kwh


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def one_build(mart: Path, days: int, method: str) -> None:
    """Build the matrix once and print JSON with time and peak RSS (child process)."""
    from audit_lib.data.access import Mart
    from audit_lib.data.matrix import build_matrix

    end = (pd.Timestamp(START) + pd.Timedelta(days=days - 1)).date()
    with Mart(mart) as m:
        t0 = time.perf_counter()
        c0 = _cpu()
        mat = build_matrix(m, BUREAU, START, end, method=method)  # type: ignore[arg-type]
        seconds = time.perf_counter() - t0
        cpu = _cpu() - c0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu,
                "load_avg_1m": os.getloadavg()[0],
                "peak_rss_mb": rss_mb,
                "shape": list(mat.values.shape),
                "missing_share": float(np.isnan(mat.values).mean()),
                "duplicates": mat.duplicates,
                "orphans": mat.orphans,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--method", default="auto")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    mart = ROOT / "var" / "bench" / f"matrix-mart-{LAYOUT}-{args.customers}x{args.days}"
    if args.child:
        one_build(mart, args.days, args.method)
        return
    if not (mart / "readings").is_dir():
        t0 = time.perf_counter()
        write_mart(mart, args.customers, args.days)
        print(f"wrote benchmark mart {mart.relative_to(ROOT)} in {time.perf_counter() - t0:.1f} s")
    runs = []
    for i in range(args.runs):
        out = subprocess.run(
            [sys.executable, __file__, "--child", *sys.argv[1:]],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
        r = runs[-1]
        print(
            f"run {i + 1}: {r['seconds']:.2f} s wall, {r['cpu_seconds']:.2f} s CPU, "
            f"peak RSS {r['peak_rss_mb']:.0f} MB, load average {r['load_avg_1m']:.1f}"
        )
    result = {
        "benchmark": "build_matrix",
        "customers": args.customers,
        "days": args.days,
        "method": args.method,
        "runs": args.runs,
        "median_seconds": statistics.median(r["seconds"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "all_seconds": [r["seconds"] for r in runs],
        "median_cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
        "load_avg_1m": [r["load_avg_1m"] for r in runs],
        "cpu_count": os.cpu_count(),
        "shape": runs[0]["shape"],
        "missing_share": runs[0]["missing_share"],
        "command": "python benchmarks/bench_matrix.py " + " ".join(sys.argv[1:]),
    }
    print(json.dumps(result, indent=2))
    out_path = ROOT / "benchmarks" / "results" / "matrix.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
