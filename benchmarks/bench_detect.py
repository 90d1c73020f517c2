"""Benchmark: every audit theme over one bureau of 10⁶ customers × 365 days (issue 3's speed).

Generates once (cached under ``var/bench/detect-<customers>x<days>``, reused while its
manifest's parameters match) a city of ONE bureau with the project's generator, then:

1. in a fresh child process per run, times ``audit_lib.detect.run.detect`` with all themes:
   wall seconds, CPU seconds, peak RSS (``resource.getrusage`` of the child), the matrix
   build and every theme's seconds (``DetectionRun.seconds``); then, off the clock, scores
   the findings and the theft score against the city's truth table (quality at this size);
2. in another child, on a ``--slice``-customer slice of the same matrix, times the naive way
   (a per-customer statsmodels STL loop, period 7, plus a pandas groupby per customer
   computing the drop ratio) against the vectorised shape features
   (:func:`audit_lib.detect.scoring.features.shape_features`) and prints the ratio.

The matrix is the whole generated year (``--days``, default 365); the detection period is
its part after the first ``--history`` days (default 120), and ``detect`` is made to load
exactly those as history (``run.HISTORY_DAYS`` is set in the child), so the matrix it builds
is exactly customers × ``--days``.

The machine is shared: the 1-minute load average is recorded beside every figure.
Results go to ``benchmarks/results/detect.json`` (10⁶ customers, the target's size) or
``benchmarks/results/detect-<customers>.json`` (any other size).

Run: ``.venv/bin/python benchmarks/bench_detect.py [--customers 1000000] [--days 365]
[--runs 1] [--slice 10000]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS_DIR = ROOT / "benchmarks" / "results"
TARGET_CUSTOMERS = 1_000_000
START = dt.date(2025, 1, 1)
TARGET_SECONDS = 60.0
TARGET_RSS_MB = 8192.0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def city_dir(customers: int, days: int) -> Path:
    """Cache folder of the generated city."""
    return ROOT / "var" / "bench" / f"detect-{customers}x{days}"


def ensure_city(customers: int, days: int, seed: int) -> tuple[Path, str, float | None]:
    """Generate the one-bureau city unless a matching one is cached.

    Returns the folder, the bureau code and the generation seconds (None when reused).
    """
    from audit_lib.demo.generate import DemoConfig, generate_demo

    out = city_dir(customers, days)
    config = DemoConfig(bureaus=1, customers=customers, days=days, start=START, seed=seed)
    manifest = out / "manifest.json"
    wanted = json.loads(json.dumps(config.as_dict(), default=str))
    took = None
    if not (manifest.exists() and json.loads(manifest.read_text()).get("parameters") == wanted):
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        generate_demo(out, config)
        took = time.perf_counter() - t0
    bureau = next(iter(json.loads(manifest.read_text())["bureaus"]))
    return out, bureau, took


HISTORY = 120


def period(days: int, history: int = HISTORY) -> tuple[dt.date, dt.date]:
    """The detection period: the generated days after the first ``history`` days."""
    end = START + dt.timedelta(days=days - 1)
    return START + dt.timedelta(days=history), end


def use_history(history: int) -> int:
    """Make ``detect`` load ``history`` days before the period; return its own default.

    The benchmark's matrix must be the generated days exactly (10⁶ × 365): with more
    history than the data has, ``build_matrix`` would add empty columns.
    """
    import audit_lib.detect.run as run_module

    default = run_module.HISTORY_DAYS
    run_module.HISTORY_DAYS = history
    return default


def child_detect(out: Path, bureau: str, days: int, history: int) -> dict[str, Any]:
    """One timed ``detect`` run with all themes (runs in a fresh process)."""
    import audit_lib.data.view as view_module
    from audit_lib.data.access import Mart
    from audit_lib.detect.run import detect

    real_build = view_module.build_matrix
    matrix_times: list[float] = []

    def timed_build(*a: Any, **k: Any) -> Any:
        # instrumentation only: the real build, timed (it runs inside the first theme)
        t = time.perf_counter()
        built = real_build(*a, **k)
        matrix_times.append(time.perf_counter() - t)
        return built

    view_module.build_matrix = timed_build
    default_history = use_history(history)
    start, end = period(days, history)
    load_before = os.getloadavg()[0]
    with Mart(out / "mart") as mart:
        t0, c0 = time.perf_counter(), _cpu()
        run = detect(mart, bureau, start, end)
        seconds, cpu = time.perf_counter() - t0, _cpu() - c0
        assert run.context is not None
        shape = list(run.context.matrix.values.shape)
    quality = scale_quality(out, bureau, start, end, run)  # after the clock: not timed
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "matrix_seconds": sum(matrix_times),
        "theme_seconds": {k: round(v, 2) for k, v in run.seconds.items()},
        "hits": run.hits,
        "shape": shape,
        "history_days": history,
        "run_history_days_default": default_history,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "load_avg_1m": [load_before, os.getloadavg()[0]],
        "quality": quality,
    }


def scale_quality(out: Path, bureau: str, start: dt.date, end: dt.date, run: Any) -> dict[str, Any]:
    """The run's findings and theft score against the city's truth table: the quality at
    10⁶ customers, where the theft score's sampled estimates (the population curve, the
    self-supervision's sample) take effect, beside the time it took."""
    import pandas as pd

    from audit_lib.detect.evaluate import theft_ranking, theme_scores, truth_in_period

    truth = truth_in_period(pd.read_parquet(out / "truth.parquet"), bureau, start, end)
    themes = theme_scores(run.findings, truth)
    scores = run.extras["theft_scores"].assign(bureau=bureau)
    return {
        "themes": {
            r["theme"]: {k: r[k] for k in ("findings", "injected", "hits", "precision", "recall")}
            for r in themes.to_dict("records")
        },
        "theft": theft_ranking(scores, truth),
    }


def naive_features(values: Any, first_weekday: int, recent: int = 30) -> Any:
    """The per-customer way: statsmodels STL (period 7) per customer, then a pandas groupby
    per customer for the drop ratio (recent window vs the rest)."""
    import numpy as np
    import pandas as pd
    from statsmodels.tsa.seasonal import STL

    n, days = values.shape
    out = np.full((n, 3), np.nan)
    dates = pd.date_range("2000-01-03", periods=days, freq="D") + pd.Timedelta(days=first_weekday)
    window = np.where(np.arange(days) >= days - recent, "recent", "before")
    for i in range(n):
        series = pd.Series(values[i], index=dates).interpolate(limit_direction="both")
        if series.isna().any():
            continue
        fit = STL(series.fillna(0.0), period=7, robust=False).fit()
        frame = pd.DataFrame({"kwh": values[i], "window": window})
        means = frame.groupby("window")["kwh"].mean()
        drop = 1.0 - means.get("recent", np.nan) / max(means.get("before", np.nan), 1e-9)
        strength = 1.0 - np.var(fit.resid) / max(np.var(fit.resid + fit.seasonal), 1e-12)
        out[i] = (drop, strength, float(fit.trend.iloc[-1] - fit.trend.iloc[0]))
    return out


def child_naive(out: Path, bureau: str, days: int, history: int, n_slice: int) -> dict[str, Any]:
    """Naive per-customer loop vs vectorised features on the first ``n_slice`` customers."""
    import numpy as np

    from audit_lib.data.access import Mart
    from audit_lib.detect.context import DetectionContext
    from audit_lib.detect.scoring.features import shape_features

    start, end = period(days, history)
    with Mart(out / "mart") as mart:
        ctx = DetectionContext(mart, bureau, start, end, history_days=history)
        values = np.where(ctx.open_mask, ctx.matrix.values, np.nan).astype(np.float32)
        first_weekday = int(ctx.matrix.dates[0].weekday())
    part = np.ascontiguousarray(values[:n_slice])
    del values, ctx
    shape_features(part[:200], first_weekday=first_weekday)  # warm-up
    load_before = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), _cpu()
    shape_features(part, first_weekday=first_weekday)
    vec_s, vec_cpu = time.perf_counter() - t0, _cpu() - c0
    t0, c0 = time.perf_counter(), _cpu()
    naive_features(part, first_weekday)
    naive_s, naive_cpu = time.perf_counter() - t0, _cpu() - c0
    return {
        "customers": int(part.shape[0]),
        "days": int(part.shape[1]),
        "vectorised_seconds": vec_s,
        "vectorised_cpu_seconds": vec_cpu,
        "naive_seconds": naive_s,
        "naive_cpu_seconds": naive_cpu,
        "ratio_wall": naive_s / vec_s,
        "ratio_cpu": naive_cpu / max(vec_cpu, 1e-9),
        "load_avg_1m": [load_before, os.getloadavg()[0]],
    }


def run_child(args: list[str]) -> dict[str, Any]:
    """Run this script as a child with ``args``; return the JSON of its last line."""
    proc = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True, cwd=ROOT
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["children_peak_rss_mb_so_far"] = usage.ru_maxrss / 1024
    return result


def main() -> None:
    """Generate (or reuse) the city, time detect and the naive slice, write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=TARGET_CUSTOMERS)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--history", type=int, default=HISTORY, help="days before the period")
    parser.add_argument("--slice", type=int, default=10_000, help="customers of the naive way")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--child", choices=["detect", "naive"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    out, bureau, gen_s = ensure_city(args.customers, args.days, args.seed)
    if args.child == "detect":
        print(json.dumps(child_detect(out, bureau, args.days, args.history)))
        return
    if args.child == "naive":
        print(json.dumps(child_naive(out, bureau, args.days, args.history, args.slice)))
        return
    if gen_s is not None:
        print(f"generated {out.relative_to(ROOT)} in {gen_s:.1f} s")
    base = ["--customers", str(args.customers), "--days", str(args.days), "--seed", str(args.seed)]
    base += ["--history", str(args.history)]
    runs = []
    for i in range(args.runs):
        r = run_child([*base, "--child", "detect"])
        runs.append(r)
        print(
            f"run {i + 1}: detect {r['seconds']:.1f} s wall, {r['cpu_seconds']:.1f} s CPU, "
            f"matrix {r['matrix_seconds']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB, "
            f"load average {r['load_avg_1m'][0]:.1f}→{r['load_avg_1m'][1]:.1f}"
        )
        for theme, s in sorted(r["theme_seconds"].items(), key=lambda kv: -kv[1]):
            print(f"  {theme:24s} {s:7.2f} s  {r['hits'][theme]:7d} findings")
        theft = r["quality"]["theft"]
        print(
            f"  theft score at this size: ROC-AUC {theft.get('roc_auc', float('nan')):.3f}, "
            f"P@100 {theft.get('precision_at_100', float('nan')):.2f}, "
            f"legitimate drops in the top 100: {theft.get('legit_in_top_100')}"
        )
    naive = None
    if not args.skip_naive:
        naive = run_child([*base, "--slice", str(args.slice), "--child", "naive"])
        print(
            f"naive way on {naive['customers']:,} customers: {naive['naive_seconds']:.1f} s "
            f"({naive['naive_cpu_seconds']:.1f} s CPU); vectorised features "
            f"{naive['vectorised_seconds']:.2f} s ({naive['vectorised_cpu_seconds']:.2f} s CPU);"
            f" ratio {naive['ratio_wall']:.0f}× wall, {naive['ratio_cpu']:.0f}× CPU"
        )
    best = min(runs, key=lambda r: r["seconds"])
    result = {
        "benchmark": "detect all themes, one bureau",
        "command": "python benchmarks/bench_detect.py " + " ".join(sys.argv[1:]),
        "customers": args.customers,
        "days": args.days,
        "period": [str(d) for d in period(args.days, args.history)],
        "history_days": args.history,
        "matrix_shape": best["shape"],
        "runs": runs,
        "median_seconds": statistics.median(r["seconds"] for r in runs),
        "median_cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "target": {"seconds": TARGET_SECONDS, "peak_rss_mb": TARGET_RSS_MB},
        "naive": naive,
        "generation_seconds": gen_s,
        "cpu_count": os.cpu_count(),
    }
    results = results_path(args.customers)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {results.relative_to(ROOT)}")


def results_path(customers: int) -> Path:
    """``detect.json`` at the target's 10⁶ customers, ``detect-<customers>.json`` otherwise."""
    name = "detect" if customers == TARGET_CUSTOMERS else f"detect-{customers}"
    return RESULTS_DIR / f"{name}.json"


if __name__ == "__main__":
    main()
