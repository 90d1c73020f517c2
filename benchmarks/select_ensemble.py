"""Choose the default tabular ensemble on ADBench sets that are NOT the ODDS test sets.

Protocol per set (pyod's): 10 splits 60/40 with ``RandomState(i)``, standardise on the
training part, fit each candidate member on the training part, score the test part. Member
scores are cached; every candidate combination (members × normalisation) is then scored
from the cache, and the one with the best mean ROC-AUC over the selection sets wins.

Selection sets exclude the 12 exact duplicates of the ODDS sets, the glass / ionosphere /
wbc variants (14, 18, 42, 43) and, to be strict, three sets built from the same source data
as an ODDS set (7_Cardiotocography ~ cardio, 19_landsat ~ satellite, 21_Lymphography ~
lympho). Sets larger than ``MAX_ROWS`` are subsampled (stratified, seed 0) to keep the run
short on 2 cores.

Run: ``.venv/bin/python benchmarks/select_ensemble.py`` (writes results/select_ensemble.json).
"""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import rankdata
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[1]
ADBENCH = ROOT / ".." / "shared" / "data" / "benchmarks" / "odds" / "adbench"
RESULTS = ROOT / "benchmarks" / "results"
MAX_ROWS = 10_000
N_SPLITS = 10
EXCLUDED = {
    # exact duplicates of the ODDS sets (benchmarks README §2)
    "6_cardio", "20_letter", "24_mnist", "25_musk", "26_optdigits", "28_pendigits", "29_Pima",
    "30_satellite", "31_satimage-2", "32_shuttle", "39_vertebral", "40_vowels",
    # variants of glass / ionosphere / wbc
    "14_glass", "18_Ionosphere", "42_WBC", "43_WDBC",
    # same source data as an ODDS set, other labelling or encoding
    "7_Cardiotocography", "19_landsat", "21_Lymphography",
}  # fmt: skip
MEMBERS = ("ECOD", "COPOD", "HBOS", "IForest", "KNN", "INNE")
CACHE = Path(tempfile.gettempdir()) / "audit_select_ensemble_cache.npz"  # ~50 MB, not in git


def load_set(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Load one ``.npz`` set, subsampled to at most ``MAX_ROWS`` rows (stratified)."""
    data = np.load(path)
    x, y = np.asarray(data["X"], dtype=np.float64), np.asarray(data["y"]).astype(int)
    if len(y) > MAX_ROWS:
        x, _, y, _ = train_test_split(x, y, train_size=MAX_ROWS, stratify=y, random_state=0)
    keep = np.nanstd(x, axis=0) > 0
    return x[:, keep], y


def fast_auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC-AUC by the rank-sum formula (ties get mean ranks), equal to sklearn's value."""
    ranks = rankdata(s)
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")  # a split without anomalies (tiny sets such as smtp): skipped
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def member_scores(name: str, x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, ...]:
    """Fit one member on the training part; return (train scores, test scores)."""
    from audit_lib.detect.ensemble import make_member

    det = make_member(name, random_state=0).fit(x_train)
    return det.decision_scores_, det.decision_function(x_test)


def main() -> None:
    """Cache member scores over the selection sets, then rank all combinations."""
    from pyod.utils.utility import standardizer

    from audit_lib.detect.ensemble import NORMALISERS, normalise_scores

    if not ADBENCH.is_dir():
        sys.exit(f"ADBench sets not found at {ADBENCH} (see benchmarks/README)")
    files = sorted(p for p in ADBENCH.glob("*.npz") if p.stem not in EXCLUDED)
    cache: dict[str, list[dict[str, tuple[np.ndarray, ...]]]] = {}
    labels: dict[str, list[np.ndarray]] = {}
    saved = dict(np.load(CACHE)) if CACHE.exists() else {}
    for path in files:
        t0 = time.perf_counter()
        if f"{path.stem}|y|0" in saved:
            cache[path.stem] = [
                {m: (saved[f"{path.stem}|{m}|{i}|tr"], saved[f"{path.stem}|{m}|{i}|te"])
                 for m in MEMBERS}
                for i in range(N_SPLITS)
            ]  # fmt: skip
            labels[path.stem] = [saved[f"{path.stem}|y|{i}"] for i in range(N_SPLITS)]
            continue
        x, y = load_set(path)
        cache[path.stem], labels[path.stem] = [], []
        for i in range(N_SPLITS):
            x_tr, x_te, _, y_te = train_test_split(
                x, y, test_size=0.4, random_state=np.random.RandomState(i)
            )
            x_tr, x_te = standardizer(x_tr, x_te)
            cache[path.stem].append({m: member_scores(m, x_tr, x_te) for m in MEMBERS})
            labels[path.stem].append(y_te)
            saved[f"{path.stem}|y|{i}"] = y_te
            for m, (tr, te) in cache[path.stem][-1].items():
                saved[f"{path.stem}|{m}|{i}|tr"], saved[f"{path.stem}|{m}|{i}|te"] = tr, te
        RESULTS.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(CACHE, **saved)
        print(f"{path.stem}: {x.shape} {time.perf_counter() - t0:.1f}s", flush=True)

    # normalise every member once per split, then each combination is a mean and an AUC
    normed = {
        (name, i, norm): {m: normalise_scores(*split[m], norm) for m in MEMBERS}
        for name, splits in cache.items()
        for i, split in enumerate(splits)
        for norm in NORMALISERS
    }
    rows = []
    for k in range(1, len(MEMBERS) + 1):
        for combo in itertools.combinations(MEMBERS, k):
            for norm in NORMALISERS:
                per_set = {}
                for name, ys in labels.items():
                    aucs = [
                        round(fast_auc(y_te, np.mean([normed[name, i, norm][m] for m in combo], 0)), 4)
                        for i, y_te in enumerate(ys)
                    ]  # fmt: skip
                    per_set[name] = float(np.nanmean(aucs))
                rows.append(
                    {
                        "members": list(combo),
                        "normaliser": norm,
                        "mean_roc": float(np.mean(list(per_set.values()))),
                        "per_set": per_set,
                    }
                )
    rows.sort(key=lambda r: -r["mean_roc"])
    for r in rows[:15]:
        print(f"{r['mean_roc']:.4f} {r['normaliser']:6s} {'+'.join(r['members'])}")
    singles = [r for r in rows if len(r["members"]) == 1 and r["normaliser"] == "rank"]
    for r in singles:
        print(f"single {r['members'][0]}: {r['mean_roc']:.4f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "sets": sorted(cache),
        "excluded": sorted(EXCLUDED),
        "max_rows": MAX_ROWS,
        "n_splits": N_SPLITS,
        "top": rows[:20],
        "singles": singles,
    }
    (RESULTS / "select_ensemble.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
