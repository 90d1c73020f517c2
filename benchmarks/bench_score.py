"""Throughput of the theft-suspicion score (``score_matrix``) on a synthetic bureau slice.

Synthetic customers × days (mixed scales, a shared season, weekly rhythm, 3 % missing
days, 2 % thieves) — speed only, no quality claim. Prints the median of ``--runs`` runs
and the peak RSS, and writes ``results/score.json``.

Run: ``.venv/bin/python benchmarks/bench_score.py [--customers 20000] [--days 365]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
RESULTS = ROOT / "benchmarks" / "results"


def main() -> None:
    """Time ``score_matrix`` and write the figures."""
    from detect_data import make_daily

    from audit_lib.detect.scoring.features import shape_features
    from audit_lib.detect.scoring.theft import score_matrix

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    values, _ = make_daily(
        np.random.default_rng(0), n=args.customers, days=args.days,
        n_thieves=args.customers // 50,
    )  # fmt: skip
    score_matrix(values[:200])  # warm-up: imports and numba compilation
    feats, total = [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        shape_features(values)
        feats.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        score_matrix(values)
        total.append(time.perf_counter() - t0)
    out = {
        "customers": args.customers,
        "days": args.days,
        "runs": args.runs,
        "features_seconds_median": float(np.median(feats)),
        "score_seconds_median": float(np.median(total)),
        "customers_per_second": args.customers / float(np.median(total)),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print("| customers × days | features (s) | score_matrix (s) | customers/s | peak RSS MB |")
    print("|---|---|---|---|---|")
    print(f"| {args.customers:,} × {args.days} | {out['features_seconds_median']:.1f} | "
          f"{out['score_seconds_median']:.1f} | {out['customers_per_second']:.0f} | "
          f"{out['peak_rss_mb']:.0f} |")  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "score.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
