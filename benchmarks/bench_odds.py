"""The default tabular ensemble on the 17 ODDS sets, pyod's own benchmark protocol.

The ensemble's configuration was chosen by ``benchmarks/select_ensemble_lodo.py`` over 41
sets, these 17 among them, so the mean printed here is in-sample; that script's
leave-one-ODDS-set-out estimate is the held-out figure (see
``audit_lib.detect.scoring.ensemble.SELECTION``). Nothing here is tuned per set.

Protocol (../shared/data/benchmarks/README.md §3): for i = 0…9,
``train_test_split(X, y, test_size=0.4, random_state=np.random.RandomState(i))``,
``pyod.utils.utility.standardizer`` fitted on the training part, the detector fitted on the
training part (anomalies included) with ``contamination`` = the true share, ROC-AUC of
``decision_function`` on the test part rounded to 4 decimals, averaged over the 10 trials.
Published values are read from ``anchors_pyod_benchmark_roc_2024.csv``.

Run: ``.venv/bin/python benchmarks/bench_odds.py``.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
from pyod.utils.utility import standardizer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[1]
ODDS = ROOT / ".." / "shared" / "data" / "benchmarks" / "odds"
RESULTS = ROOT / "benchmarks" / "results"
PUBLISHED = ("ECOD", "COPOD", "HBOS", "IForest", "KNN", "INNE")
TARGET = 0.83


def published_table() -> dict[str, dict[str, float]]:
    """Per-set published ROC-AUC of the reference detectors (pyod 2024 benchmark)."""
    with open(ODDS / "anchors_pyod_benchmark_roc_2024.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return {
        r["Data"]: {d: float(r[next(k for k in r if k.strip() == d)]) for d in PUBLISHED}
        for r in rows
    }


def evaluate_set(path: Path) -> tuple[float, list[float], float]:
    """Mean ROC-AUC over pyod's 10 splits, the per-split values and the seconds taken."""
    from audit_lib.detect.scoring.ensemble import DefaultEnsemble

    data = np.load(path)
    x, y = np.asarray(data["X"], dtype=np.float64), np.asarray(data["y"]).astype(int)
    share = float(y.mean())
    rocs = []
    t0 = time.perf_counter()
    for i in range(10):
        x_tr, x_te, _, y_te = train_test_split(
            x, y, test_size=0.4, random_state=np.random.RandomState(i)
        )
        x_tr, x_te = standardizer(x_tr, x_te)
        det = DefaultEnsemble(contamination=share).fit(x_tr)
        rocs.append(round(float(roc_auc_score(y_te, det.decision_function(x_te))), 4))
    return float(np.mean(rocs)), rocs, time.perf_counter() - t0


def main() -> None:
    """Run all 17 sets, print the markdown table, write results/odds.json."""
    from audit_lib.detect.scoring.ensemble import (
        DEFAULT_HOW,
        DEFAULT_MEMBERS,
        DEFAULT_NORMALISER,
        DEFAULT_WEIGHTS,
        SELECTION,
    )

    if not (ODDS / "odds_pyod").is_dir():
        sys.exit(f"ODDS sets not found under {ODDS}; see ../shared/data/benchmarks/README.md")
    anchors = published_table()
    load_start = os.getloadavg()[0]
    rows = []
    for path in sorted((ODDS / "odds_pyod").glob("*.npz")):
        mean, rocs, secs = evaluate_set(path)
        rows.append({"data": path.stem, "ours": mean, "splits": rocs, "seconds": secs,
                     **{d: anchors[path.stem][d] for d in PUBLISHED}})  # fmt: skip
        print(f"{path.stem}: {mean:.4f} ({secs:.1f}s)", flush=True)
    means = {k: float(np.mean([r[k] for r in rows])) for k in ("ours", *PUBLISHED)}
    weights = DEFAULT_WEIGHTS or (1.0,) * len(DEFAULT_MEMBERS)
    parts = [f"{w:g}×{m}" for m, w in zip(DEFAULT_MEMBERS, weights, strict=True)]
    config = f"{' + '.join(parts)}, {DEFAULT_NORMALISER}-normalised, {DEFAULT_HOW}"
    print(f"\nensemble: {config}\nselection: {SELECTION}\n")
    print("| data | ours | " + " | ".join(PUBLISHED) + " |")
    print("|---" * (len(PUBLISHED) + 2) + "|")
    for r in [*rows, {"data": "**mean**", **means}]:
        cells = " | ".join(f"{r[k]:.4f}" for k in ("ours", *PUBLISHED))
        print(f"| {r['data']} | {cells} |")
    lodo = RESULTS / "select_ensemble_lodo.json"
    held_out = json.loads(lodo.read_text())["held_out_estimate"] if lodo.exists() else None
    judged = means["ours"] if held_out is None else held_out
    gap = judged - TARGET
    verdict = "meets" if gap >= 0 and judged > means["INNE"] else "misses"
    judged_as = "mean" if held_out is None else "held-out estimate (select_ensemble_lodo.py)"
    print(f"\nmean {means['ours']:.4f} (in-sample: these sets were in the selection); "
          f"{judged_as} {judged:.4f} {verdict} the target {TARGET} (gap {gap:+.4f}); "
          f"INNE {means['INNE']:.4f}, IForest {means['IForest']:.4f}")  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "protocol": "pyod: 10 splits 60/40 RandomState(i), standardizer on train, ROC on test",
        "ensemble": config,
        "selection": SELECTION,
        "mean": means,
        "mean_is": "in-sample (the 17 sets were in the selection pool)",
        "held_out_estimate": held_out,
        "target": TARGET,
        "gap_to_target": gap,
        "per_set": rows,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "seconds": sum(r["seconds"] for r in rows),
        "load_average_1min": {"start": load_start, "end": os.getloadavg()[0]},
    }
    (RESULTS / "odds.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
