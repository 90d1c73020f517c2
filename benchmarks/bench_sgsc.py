"""Theft score on REAL household consumption: the 50 SGSC households, theft injected here.

Data: ``../shared/data/benchmarks/loadprofiles/sgsc_smartmeter_50cust_halfhourly.parquet``
(Smart Grid, Smart City trial, NSW; see that folder's README). Half-hourly readings are
summed to days (a day with fewer than 44 of 48 half-hours is missing); the window is the
last 365 days of the panel. The panel has no labels: every anomaly here is injected by THIS
script, with its own implementation and parameter ranges, different from the
self-supervision in ``audit_lib.detect.scoring.inject`` (and with one kind, a gradual ramp-down,
that the self-supervision never generates).

Per seed, ~15 % of the customers that have ≥ 90 observed days become thieves (kind, start
day and strength drawn at random); all customers are scored; ROC-AUC of our score is
compared with two baselines computed in the same run: the drop ratio (mean of the last
third / first third of each customer's observed span, lower = more suspicious) and pyod
IForest on the raw daily vectors (missing days filled with the customer's median).

Seeds: 50 by default (1000…1049): with ~7 thieves among 46 customers one seed's ROC-AUC
moves in steps of ~0.003 and its spread over seeds is ~0.06, so 10 seeds leave the mean
uncertain by ±0.02; 50 seeds pin it to about ±0.007.

Honesty note: the reported seeds are 1000…1049. Design choices of the theft score (its
unsupervised members, weekly vs daily change scans, the drop rule's weight, the absence copies,
the ceiling feature) were compared on development seeds only — ``--first-seed 100`` (100…149;
100…105 in the earliest rounds), written to ``--out sgsc-dev.json`` — but on the same 46
households, so the reported figures are not a fully independent test. Every run also prints
the ROC-AUC of each injected kind.

Run: ``.venv/bin/python benchmarks/bench_sgsc.py [--seeds 50] [--first-seed 1000]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from pyod.models.iforest import IForest
from sklearn.metrics import average_precision_score, roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
DATA = (
    ROOT / ".." / "shared" / "data" / "benchmarks" / "loadprofiles"
    / "sgsc_smartmeter_50cust_halfhourly.parquet"
)  # fmt: skip
RESULTS = ROOT / "benchmarks" / "results"
BENCH_KINDS = ("scale", "daily_random", "bypass_days", "flat", "clip", "outage", "ramp")


def load_daily(path: Path, days: int = 365) -> tuple[np.ndarray, np.ndarray, pd.DatetimeIndex]:
    """Customers × days matrix of daily kWh over the panel's last ``days`` days."""
    raw = pd.read_parquet(path, columns=["customer_id", "reading_datetime", "general_supply_kwh"])
    raw = raw.groupby(["customer_id", "reading_datetime"], as_index=False).mean()  # DST dups
    raw["date"] = raw["reading_datetime"].dt.normalize()
    daily = raw.groupby(["customer_id", "date"])["general_supply_kwh"].agg(["sum", "count"])
    daily["kwh"] = daily["sum"].where(daily["count"] >= 44)
    end = daily.index.get_level_values("date").max()
    dates = pd.date_range(end - pd.Timedelta(days=days - 1), end, freq="D")
    wide = daily["kwh"].unstack("date").reindex(columns=dates)
    return wide.to_numpy(dtype=np.float32), wide.index.to_numpy(), dates


def inject_bench(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Benchmark-side theft on ONE series (its own code; a loop over ~7 thieves is fine)."""
    d = len(x)
    obs = np.flatnonzero(~np.isnan(x))
    start = int(obs[int(rng.uniform(0.35, 0.75) * len(obs))])
    kind = str(rng.choice(BENCH_KINDS))
    y = x.copy()
    seg = y[start:]
    if kind == "scale":
        seg *= rng.uniform(0.3, 0.7)
    elif kind == "daily_random":
        seg *= rng.uniform(0.1, 1.0, size=len(seg))
    elif kind == "bypass_days":
        seg[rng.random(len(seg)) < rng.uniform(0.3, 0.6)] = 0.0
    elif kind == "flat":
        seg[~np.isnan(seg)] = np.nanmean(seg) * rng.uniform(0.5, 0.9)
    elif kind == "clip":
        seg[:] = np.minimum(seg, np.nanquantile(x, rng.uniform(0.3, 0.5)))
    elif kind == "outage":
        length = int(rng.integers(14, 61))
        part = seg[:length]
        part[~np.isnan(part)] = 0.0
    elif kind == "ramp":
        floor = rng.uniform(0.3, 0.6)
        seg *= np.maximum(1.0 - (1.0 - floor) * np.arange(len(seg)) / 60.0, floor)
    y[start:] = seg
    assert len(y) == d
    return y, kind


def drop_ratio_score(values: np.ndarray) -> np.ndarray:
    """Baseline 1: minus (mean of last third / mean of first third) of the observed span."""
    out = np.empty(len(values))
    for i, row in enumerate(values):  # baseline only; 50 customers
        obs = row[~np.isnan(row)]
        k = max(len(obs) // 3, 1)
        out[i] = -(obs[-k:].mean() + 1e-6) / (obs[:k].mean() + 1e-6)
    return out


def iforest_score(values: np.ndarray, seed: int) -> np.ndarray:
    """Baseline 2: pyod IForest on the raw daily vectors (NaN → customer median)."""
    med = np.nanmedian(values, axis=1, keepdims=True)
    filled = np.where(np.isnan(values), med, values)
    return np.asarray(IForest(random_state=seed).fit(filled).decision_scores_)


def kind_aucs(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per thief (rows where ``y``), the share of honest customers it outscores (ties half):
    averaged over the thieves of one kind, that kind's ROC-AUC."""
    honest = np.sort(scores[y == 0])
    thieves = scores[y == 1]
    below = np.searchsorted(honest, thieves, side="left")
    ties = np.searchsorted(honest, thieves, side="right") - below
    return np.asarray((below + 0.5 * ties) / len(honest))


def run(seeds: int, share: float, first_seed: int = 1000) -> dict[str, object]:
    """Run every seed (``first_seed``, ``first_seed + 1``, …); return per-seed and mean
    figures, and the ROC-AUC of each injected kind against all honest customers."""
    from audit_lib.detect.scoring.theft import score_matrix

    values, ids, dates = load_daily(DATA)
    eligible = np.sum(~np.isnan(values), axis=1) >= 90
    values, ids = values[eligible], ids[eligible]
    n = len(values)
    per_seed = []
    by_kind: dict[str, list[float]] = {k: [] for k in BENCH_KINDS}
    for seed in range(seeds):
        rng = np.random.default_rng(first_seed + seed)
        thieves = rng.choice(n, max(2, round(share * n)), replace=False)
        x = values.copy()
        kinds = []
        for i in thieves:
            x[i], kind = inject_bench(values[i], rng)
            kinds.append(kind)
        y = np.zeros(n, dtype=int)
        y[thieves] = 1
        t0 = time.perf_counter()
        scored = score_matrix(x, keys=ids.astype(str), first_weekday=int(dates[0].weekday()))
        secs = time.perf_counter() - t0
        by_key = scored.set_index("cons_no").loc[ids.astype(str)]
        ours = by_key["score"].to_numpy()
        for kind, auc in zip(kinds, kind_aucs(y, np.nan_to_num(ours, nan=-1.0)), strict=True):
            by_kind[kind].append(float(auc))
        row = {
            "seed": seed,
            "thieves": len(thieves),
            "kinds": kinds,
            "ours_roc": roc_auc_score(y, np.nan_to_num(ours, nan=-1.0)),
            "ours_ap": average_precision_score(y, np.nan_to_num(ours, nan=-1.0)),
            "self_only_roc": roc_auc_score(y, by_key["score_self"].fillna(-1.0)),
            "unsup_only_roc": roc_auc_score(y, by_key["score_unsup"].fillna(-1.0)),
            "drop_ratio_roc": roc_auc_score(y, drop_ratio_score(x)),
            "iforest_roc": roc_auc_score(y, iforest_score(x, seed)),
            "score_seconds": secs,
        }
        per_seed.append(row)
        print(
            f"seed {seed}: ours {row['ours_roc']:.3f}  drop {row['drop_ratio_roc']:.3f}  "
            f"iforest {row['iforest_roc']:.3f}  ({', '.join(kinds)})",
            flush=True,
        )
    keys = ("ours_roc", "self_only_roc", "unsup_only_roc", "drop_ratio_roc", "iforest_roc",
            "ours_ap", "score_seconds")  # fmt: skip
    summary = {k: float(np.mean([r[k] for r in per_seed])) for k in keys}
    summary.update({f"{k}_sd": float(np.std([r[k] for r in per_seed])) for k in keys[:5]})
    summary["ours_roc_se"] = summary["ours_roc_sd"] / np.sqrt(len(per_seed))
    return {
        "first_seed": first_seed,
        "customers": n,
        "days": len(dates),
        "window": [str(dates[0].date()), str(dates[-1].date())],
        "thief_share": share,
        "seeds": seeds,
        "kinds": BENCH_KINDS,
        "mean": summary,
        "kind_roc": {k: float(np.mean(v)) if v else None for k, v in by_kind.items()},
        "per_seed": per_seed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    """Parse options, run, print a markdown table and write results/sgsc.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--share", type=float, default=0.15)
    parser.add_argument(
        "--first-seed", type=int, default=1000,
        help="1000 = the reported seeds; 100 = the development seeds design choices used",
    )  # fmt: skip
    parser.add_argument("--out", default="sgsc.json", help="file name under benchmarks/results")
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"SGSC panel not found at {DATA}; see ../shared/data/benchmarks/README.md")
    out = run(args.seeds, args.share, args.first_seed)
    m = out["mean"]
    assert isinstance(m, dict)
    print(f"\n{out['customers']} customers × {out['days']} days, {out['seeds']} seeds")
    print("| score | ROC-AUC (mean ± sd over seeds) |\n|---|---|")
    for label, key in (
        ("ours (theft score, blended)", "ours_roc"),
        ("  its self-supervised part alone", "self_only_roc"),
        ("  its unsupervised ensemble part alone", "unsup_only_roc"),
        ("baseline: drop ratio last/first third", "drop_ratio_roc"),
        ("baseline: IForest on raw daily vectors", "iforest_roc"),
    ):
        print(f"| {label} | {m[key]:.3f} ± {m[key + '_sd']:.3f} |")
    print(f"standard error of the mean (ours): {m['ours_roc_se']:.3f}")
    print(f"average precision (ours): {m['ours_ap']:.3f}; peak RSS {out['peak_rss_mb']:.0f} MB")
    kinds = out["kind_roc"]
    assert isinstance(kinds, dict)
    print("ROC-AUC per injected kind:", ", ".join(f"{k} {v:.3f}" for k, v in kinds.items() if v))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
