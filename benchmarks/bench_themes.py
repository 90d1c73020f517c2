"""Benchmark: detection quality of every audit theme on generated cities, over several seeds.

For each seed a fresh demo city is generated (the project's own generator, default rates),
every theme runs over every bureau for the last year with the first year as history, and the
findings are scored against the truth table: precision / recall / F1 per theme that targets
an injected kind, and for the theft score ROC-AUC, average precision, precision@100 and
MAP@100/200 over every scored customer, plus the count of legitimate drops (vacancy, move)
in the top 100. Targets (issue 3): rule themes recall ≥ 0.95 at precision ≥ 0.90; theft
ROC-AUC ≥ 0.95 and precision@100 ≥ 0.90.

Run: ``.venv/bin/python benchmarks/bench_themes.py [--seeds 3] [--customers 20000]``
Results: ``benchmarks/results/themes.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path

import pandas as pd

from audit_lib.data.access import Mart
from audit_lib.demo.generate import DemoConfig, generate_demo
from audit_lib.detect.evaluate import kind_recall, theft_ranking, theme_scores, truth_in_period
from audit_lib.detect.run import detect

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "var" / "bench" / "themes"
RESULTS = ROOT / "benchmarks" / "results" / "themes.json"
START = dt.date(2024, 1, 1)
PERIOD = (dt.date(2025, 1, 1), dt.date(2025, 12, 30))


def one_seed(seed: int, customers: int, bureaus: int, reuse: bool) -> dict[str, object]:
    """Generate a city with ``seed`` (or reuse the one generated with the same config),
    detect, and score against the truth."""
    out = WORK / f"seed{seed}"
    config = DemoConfig(bureaus=bureaus, customers=customers, days=730, start=START, seed=seed)
    manifest = out / "manifest.json"
    same = manifest.exists() and json.loads(manifest.read_text()).get("parameters") == json.loads(
        json.dumps(config.as_dict(), default=str)
    )
    if not (reuse and same):
        shutil.rmtree(out, ignore_errors=True)
        generate_demo(out, config)
    truth = pd.read_parquet(out / "truth.parquet")
    findings, scores, truths, seconds = [], [], [], 0.0
    with Mart(out / "mart") as mart:
        for bureau in mart.bureau_codes():
            t0 = time.perf_counter()
            run = detect(mart, bureau, *PERIOD)
            seconds += time.perf_counter() - t0
            findings.append(run.findings)
            scores.append(run.extras["theft_scores"].assign(bureau=bureau))
            truths.append(truth_in_period(truth, bureau, *PERIOD))
    all_truth = pd.concat(truths, ignore_index=True)
    found = pd.concat(findings, ignore_index=True)
    themes = theme_scores(found, all_truth)
    kinds = kind_recall(found, all_truth)
    theft = theft_ranking(pd.concat(scores, ignore_index=True), all_truth)
    return {"seed": seed, "detect_seconds": seconds, "themes": themes.to_dict("records"),
            "kinds": kinds.to_dict("records"), "theft": theft}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--bureaus", type=int, default=2)
    parser.add_argument("--reuse", action="store_true", help="keep cities generated before")
    parser.add_argument(
        "--first-seed", type=int, default=1,
        help="1 = the reported seeds; 11 = the development seeds design choices used",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file")
    args = parser.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    runs = [one_seed(s, args.customers, args.bureaus, args.reuse) for s in seeds]
    frame = pd.DataFrame([{"seed": r["seed"], **t} for r in runs for t in r["themes"]])
    table = frame.groupby(["theme", "name_zh"])[["precision", "recall", "f1"]].agg(["mean", "min"])
    theft = pd.DataFrame([{"seed": r["seed"], **r["theft"]} for r in runs])
    kinds = pd.DataFrame([k for r in runs for k in r["kinds"]])
    by_kind = kinds.groupby(["theme", "kind"])[["injected", "hits"]].sum()
    by_kind["recall"] = by_kind["hits"] / by_kind["injected"]
    print(table.round(3).to_string())
    print(by_kind.round(3).to_string())
    print(theft.round(3).to_string(index=False))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "themes",
        "command": f"python benchmarks/bench_themes.py --seeds {args.seeds} "
                   f"--customers {args.customers} --bureaus {args.bureaus} "
                   f"--first-seed {args.first_seed}",
        "load_avg_1min": os.getloadavg()[0],
        "runs": runs,
    }, indent=2, default=str))  # fmt: skip


if __name__ == "__main__":
    main()
