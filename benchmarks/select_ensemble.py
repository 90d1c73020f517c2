"""Choose the default tabular ensemble on ADBench sets that are NOT the ODDS test sets.

Protocol per set (pyod's): 10 splits 60/40 with ``RandomState(i)``, standardise on the
training part, fit each candidate member on the training part, score the test part. Member
scores are cached (per set, member and split, so new candidates add to the cache); every
candidate configuration is then scored from the cache:

- every subset of up to ``MAX_SIZE`` usable members (a member that raised on any split of any
  set is not usable: a default must work everywhere);
- combined by the mean of rank / z-score / robust (median, MAD) normalised scores, or by the
  largest robust score;
- for the best unweighted subsets, every weighting with weights in {1, 2}.

The winner is the SIMPLEST configuration (fewest members, then unweighted, then a mean)
within ``TOLERANCE`` of the best mean ROC-AUC, highest mean among those: a guard against
fitting the selection sets' noise.

Selection sets exclude the 12 exact duplicates of the ODDS sets, the glass / ionosphere /
wbc variants (14, 18, 42, 43) and, to be strict, three sets built from the same source data
as an ODDS set (7_Cardiotocography ~ cardio, 19_landsat ~ satellite, 21_Lymphography ~
lympho). Sets larger than ``MAX_ROWS`` are subsampled (stratified, seed 0) to keep the run
short on 2 cores.

Run: ``OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/select_ensemble.py``
(writes results/select_ensemble.json).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from ensemble_candidates import CANDIDATES, make_candidate  # benchmarks/ is on sys.path
from scipy.stats import rankdata
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[1]
ADBENCH = ROOT / ".." / "shared" / "data" / "benchmarks" / "odds" / "adbench"
RESULTS = ROOT / "benchmarks" / "results"
MAX_ROWS = 10_000
N_SPLITS = 10
MAX_SIZE = 4
TOLERANCE = 0.002
TOP_WEIGHTED = 10  # unweighted subsets whose {1, 2} weightings are tried
EXCLUDED = {
    # exact duplicates of the ODDS sets (benchmarks README §2)
    "6_cardio", "20_letter", "24_mnist", "25_musk", "26_optdigits", "28_pendigits", "29_Pima",
    "30_satellite", "31_satimage-2", "32_shuttle", "39_vertebral", "40_vowels",
    # variants of glass / ionosphere / wbc
    "14_glass", "18_Ionosphere", "42_WBC", "43_WDBC",
    # same source data as an ODDS set, other labelling or encoding
    "7_Cardiotocography", "19_landsat", "21_Lymphography",
}  # fmt: skip
# KDE and OCSVM are left out: both cost O(n²) (3-8 CPU s per split here, hours at 10⁶ rows)
SCHEMES = (("mean", "rank"), ("mean", "zscore"), ("mean", "robust"), ("max", "robust"))
OLD_DEFAULT = {"members": ["ECOD", "IForest", "KNN"], "how": "mean", "normaliser": "robust"}
CACHE = Path(tempfile.gettempdir()) / "audit_select_ensemble_cache_v2.npz"  # not in git

Split = dict[str, tuple[np.ndarray, np.ndarray]]


def load_set(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Load one ``.npz`` set.

    An ADBench selection set is subsampled to at most ``MAX_ROWS`` rows (stratified) and
    loses its constant columns; any other set (an ODDS test set) is read as published, as
    ``bench_odds.py`` reads it.
    """
    data = np.load(path)
    x, y = np.asarray(data["X"], dtype=np.float64), np.asarray(data["y"]).astype(int)
    if path.parent.resolve() != ADBENCH.resolve():
        return x, y
    if len(y) > MAX_ROWS:
        x, _, y, _ = train_test_split(x, y, train_size=MAX_ROWS, stratify=y, random_state=0)
    keep = np.nanstd(x, axis=0) > 0
    return x[:, keep], y


def fast_auc(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """ROC-AUC of each row of ``s`` (rank-sum formula, ties at mean rank = sklearn's value).

    NaN when ``y`` has one class only (a split without anomalies, e.g. smtp: skipped).
    """
    s = np.atleast_2d(s)
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return np.full(len(s), np.nan)
    ranks = rankdata(s, axis=1)
    return np.asarray((ranks[:, pos].sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def member_scores(name: str, x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, ...]:
    """Fit one member on the training part; return (train scores, test scores)."""
    det = make_candidate(name, random_state=0).fit(x_train)
    return np.asarray(det.decision_scores_), np.asarray(det.decision_function(x_test))


def splits_of(path: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """pyod's 10 standardised 60/40 splits of a set: (x_train, x_test, y_test)."""
    from pyod.utils.utility import standardizer

    x, y = load_set(path)
    out = []
    for i in range(N_SPLITS):
        x_tr, x_te, _, y_te = train_test_split(
            x, y, test_size=0.4, random_state=np.random.RandomState(i)
        )
        x_tr, x_te = standardizer(x_tr, x_te)
        out.append((x_tr, x_te, y_te))
    return out


def fill_cache(saved: dict[str, np.ndarray], files: list[Path]) -> dict[str, float]:
    """Compute the member scores missing from ``saved`` (in place); CPU seconds per member."""
    cpu = dict.fromkeys(CANDIDATES, 0.0)
    for path in files:
        todo = [m for m in CANDIDATES if f"{path.stem}|{m}|done" not in saved]
        if not todo:
            continue
        t0 = time.perf_counter()
        for i, (x_tr, x_te, y_te) in enumerate(splits_of(path)):
            saved[f"{path.stem}|y|{i}"] = y_te
            for m in todo:
                c0 = time.process_time()
                try:
                    tr, te = member_scores(m, x_tr, x_te)
                except Exception as exc:  # a failing candidate is recorded, not fatal
                    saved[f"{path.stem}|{m}|fail"] = np.array(repr(exc)[:200])
                    continue
                saved[f"{path.stem}|{m}|{i}|tr"], saved[f"{path.stem}|{m}|{i}|te"] = tr, te
                cpu[m] += time.process_time() - c0
        for m in todo:
            saved[f"{path.stem}|{m}|done"] = np.array(True)
        np.savez(CACHE, **saved)
        print(f"{path.stem}: {', '.join(todo)} in {time.perf_counter() - t0:.1f}s", flush=True)
    return cpu


def normalised_tests(
    saved: dict[str, np.ndarray], stem: str, members: tuple[str, ...]
) -> list[dict[str, np.ndarray]]:
    """Per split, per normaliser: the members' normalised test scores (members × rows)."""
    from audit_lib.detect.scoring.ensemble import NORMALISERS, normalise_scores

    out = []
    for i in range(N_SPLITS):
        pairs = [(saved[f"{stem}|{m}|{i}|tr"], saved[f"{stem}|{m}|{i}|te"]) for m in members]
        out.append({n: np.asarray([normalise_scores(*p, n) for p in pairs]) for n in NORMALISERS})
    return out


def combo_aucs(
    normed: list[dict[str, np.ndarray]], ys: list[np.ndarray], idx: np.ndarray, weights: Any
) -> dict[tuple[str, str], np.ndarray]:
    """Mean (over splits, NaN skipped) ROC-AUC of each member subset ``idx`` (combos × k).

    ``weights`` (combos × k) weights the mean; max combinations ignore it.
    """
    out = {}
    for how, norm in SCHEMES:
        if how == "max" and weights is not None:
            continue
        per_split = []
        for split, y in zip(normed, ys, strict=True):
            parts = split[norm][idx]  # combos × k × rows
            if how == "max":
                combined = parts.max(axis=1)
            else:
                w = np.ones(idx.shape) if weights is None else weights
                combined = np.einsum("ckr,ck->cr", parts, w / w.sum(axis=1, keepdims=True))
            per_split.append(np.round(fast_auc(y, combined), 4))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[how, norm] = np.nanmean(per_split, axis=0)
    return out


def config_rows(
    per_set: dict[str, dict[tuple[str, str], np.ndarray]],
    combos: list[tuple[str, ...]],
    weights: list[tuple[int, ...]] | None,
) -> list[dict[str, Any]]:
    """One result row per (combination, scheme): members, weights, mean and per-set ROC."""
    rows = []
    for how, norm in SCHEMES:
        if (how, norm) not in next(iter(per_set.values())):
            continue
        for c, combo in enumerate(combos):
            sets = {s: round(float(v[how, norm][c]), 4) for s, v in per_set.items()}
            rows.append(
                {
                    "members": list(combo),
                    "weights": list(weights[c]) if weights else None,
                    "how": how,
                    "normaliser": norm,
                    "mean_roc": float(np.mean(list(sets.values()))),
                    "per_set": sets,
                }
            )
    return rows


def evaluate(
    saved: dict[str, np.ndarray],
    stems: list[str],
    members: tuple[str, ...],
    combos: list[tuple[str, ...]],
    weights: list[tuple[int, ...]] | None = None,
) -> list[dict[str, Any]]:
    """Mean ROC-AUC over the selection sets of every combination (grouped by size)."""
    col = {m: j for j, m in enumerate(members)}
    per_set: dict[str, dict[tuple[str, str], np.ndarray]] = {}
    sizes = sorted({len(c) for c in combos})
    order = [c for k in sizes for c in range(len(combos)) if len(combos[c]) == k]
    for stem in stems:
        normed = normalised_tests(saved, stem, members)
        ys = [saved[f"{stem}|y|{i}"] for i in range(N_SPLITS)]
        parts: dict[tuple[str, str], list[np.ndarray]] = {}
        for k in sizes:
            pick = [c for c in range(len(combos)) if len(combos[c]) == k]
            idx = np.array([[col[m] for m in combos[c]] for c in pick])
            w = None if weights is None else np.array([weights[c] for c in pick], float)
            for key, aucs in combo_aucs(normed, ys, idx, w).items():
                parts.setdefault(key, []).append(aucs)
        per_set[stem] = {key: np.concatenate(v) for key, v in parts.items()}
    ordered = [combos[c] for c in order]
    ordered_w = None if weights is None else [weights[c] for c in order]
    return config_rows(per_set, ordered, ordered_w)


def weightings(combo: tuple[str, ...]) -> list[tuple[int, ...]]:
    """Every weighting of ``combo`` with weights in {1, 2}, not all equal."""
    return [w for w in itertools.product((1, 2), repeat=len(combo)) if len(set(w)) > 1]


def weighted_seeds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``TOP_WEIGHTED`` best unweighted means of more than one member: the subsets whose
    weightings are tried."""
    plain = sorted((r for r in rows if r["how"] == "mean" and r["weights"] is None),
                   key=lambda r: -r["mean_roc"])  # fmt: skip
    return [r for r in plain if len(r["members"]) > 1][:TOP_WEIGHTED]


def weighted_rows(
    saved: dict[str, np.ndarray], stems: list[str], usable: tuple[str, ...], seed: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every {1, 2} weighting of the subset ``seed``, with the seed's normaliser."""
    w_list = weightings(tuple(seed["members"]))
    rows = evaluate(saved, stems, usable, [tuple(seed["members"])] * len(w_list), w_list)
    return [x for x in rows if x["normaliser"] == seed["normaliser"]]


def usable_members(
    saved: dict[str, np.ndarray], stems: list[str]
) -> tuple[tuple[str, ...], dict[str, str]]:
    """The candidates that raised on no split of ``stems`` (a default must work everywhere),
    and the failures seen (``"set|member"`` → error)."""
    failures = {k.rsplit("|", 1)[0]: str(v) for k, v in saved.items()
                if k.endswith("|fail") and k.split("|")[0] in stems
                and k.split("|")[1] in CANDIDATES}  # fmt: skip
    usable = tuple(m for m in CANDIDATES if not any(f.endswith(f"|{m}") for f in failures))
    return usable, failures


def subsets(usable: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every subset of up to ``MAX_SIZE`` of the ``usable`` members."""
    return [c for k in range(1, MAX_SIZE + 1) for c in itertools.combinations(usable, k)]


def complexity(row: dict[str, Any]) -> tuple[int, int, int]:
    """Simpler first: fewer members, unweighted, mean before max."""
    return (len(row["members"]), row["weights"] is not None, row["how"] != "mean")


def choose(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], float]:
    """The simplest configuration within ``TOLERANCE`` of the best mean (highest mean among
    equally simple ones); also returns the best mean."""
    best = max(r["mean_roc"] for r in rows)
    near = [r for r in rows if r["mean_roc"] >= best - TOLERANCE]
    simplest = min(complexity(r) for r in near)
    pick = max((r for r in near if complexity(r) == simplest), key=lambda r: r["mean_roc"])
    return pick, best


def label(row: dict[str, Any]) -> str:
    """Short text of a configuration."""
    w = f" w={row['weights']}" if row["weights"] else ""
    return f"{row['how']}/{row['normaliser']} {'+'.join(row['members'])}{w}"


def main() -> None:
    """Cache member scores over the selection sets, rank the configurations, pick one."""
    if not ADBENCH.is_dir():
        sys.exit(f"ADBench sets not found at {ADBENCH} (see benchmarks/README)")
    t_start = time.perf_counter()
    files = sorted(p for p in ADBENCH.glob("*.npz") if p.stem not in EXCLUDED)
    saved = dict(np.load(CACHE)) if CACHE.exists() else {}
    cpu = fill_cache(saved, files)
    stems = [p.stem for p in files]
    usable, failures = usable_members(saved, stems)
    t_search = time.perf_counter()
    rows = evaluate(saved, stems, usable, subsets(usable))
    for seed in weighted_seeds(rows):
        rows += weighted_rows(saved, stems, usable, seed)
    rows.sort(key=lambda r: -r["mean_roc"])
    chosen, best = choose(rows)
    old = next(r for r in rows if r["weights"] is None and r["members"] == OLD_DEFAULT["members"]
               and r["how"] == OLD_DEFAULT["how"] and r["normaliser"] == OLD_DEFAULT["normaliser"])  # fmt: skip
    singles = sorted((r for r in rows if len(r["members"]) == 1 and r["normaliser"] == "rank"
                      and r["how"] == "mean"), key=lambda r: -r["mean_roc"])  # fmt: skip
    for r in rows[:20]:
        print(f"{r['mean_roc']:.4f} {label(r)}")
    for r in singles:
        print(f"single {r['members'][0]}: {r['mean_roc']:.4f}")
    print(f"failures: {failures}\nold default {old['mean_roc']:.4f} {label(old)}")
    print(f"best {best:.4f}; chosen {chosen['mean_roc']:.4f} {label(chosen)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "sets": stems,
        "excluded": sorted(EXCLUDED),
        "max_rows": MAX_ROWS,
        "n_splits": N_SPLITS,
        "candidates": list(CANDIDATES),
        "usable": list(usable),
        "failures": failures,
        "schemes": [list(s) for s in SCHEMES],
        "max_size": MAX_SIZE,
        "rule": f"simplest (fewest members, unweighted, mean) within {TOLERANCE} of the best",
        "n_configurations": len(rows),
        "best_mean": best,
        "chosen": chosen,
        "old_default": old,
        "top": rows[:30],
        "singles": singles,
        "member_cpu_seconds_this_run": {m: round(s, 1) for m, s in cpu.items()},
        "search_seconds": round(time.perf_counter() - t_search, 1),
        "total_seconds": round(time.perf_counter() - t_start, 1),
        "load_average_end": os.getloadavg()[0],
    }
    (RESULTS / "select_ensemble.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
