"""Choose the default ensemble with the ODDS sets in the pool, and estimate it honestly.

``select_ensemble.py`` chose the default on 24 ADBench sets only, and the 17 ODDS sets, run
once after that choice, gave 0.8074: short of the 0.83 the detection issue asks for. Choosing
again now that the ODDS results are known would report a figure tuned on the sets it is
reported on. This script is the protocol for choosing with every set while still reporting a
held-out figure. It was fixed, and committed, before its first run:

1. Pool: the 24 selection sets of ``select_ensemble.py`` (same exclusions, at most 10,000
   rows each) and the 17 ODDS sets (complete, read as ``bench_odds.py`` reads them): 41 sets.
2. Candidates, combinations, weightings and the choice rule: ``select_ensemble.py``'s,
   unchanged (the simplest configuration within 0.002 of the best mean ROC-AUC).
3. Held-out estimate (leave one ODDS set out): for each ODDS set, choose on the other 40
   sets; the chosen configuration's ROC-AUC on the left-out set (pyod's 10 splits) is that
   set's held-out value. The mean of the 17 held-out values is the figure reported against
   the target 0.83: what the selection gives on a set it did not see.
4. Default: the choice on all 41 sets becomes ``DefaultEnsemble``'s configuration. Its ODDS
   mean (``bench_odds.py``) is in-sample and is reported as such, beside the estimate.

A check of the cache against ``bench_odds.py``: the configuration in ``ensemble.py`` when this
runs is scored on the ODDS sets from the cached member scores too, and must give the mean
``bench_odds.py`` printed for it (results/odds.json).

Run: ``OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/select_ensemble_lodo.py``
(writes results/select_ensemble_lodo.json; shares select_ensemble.py's score cache).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import numpy as np
import select_ensemble as se  # benchmarks/ is on sys.path when run as a script

ODDS = se.ROOT / ".." / "shared" / "data" / "benchmarks" / "odds" / "odds_pyod"
TARGET = 0.83


def restricted(rows: list[dict[str, Any]], stems: list[str]) -> list[dict[str, Any]]:
    """``rows`` as if only ``stems`` had been searched: the mean ROC-AUC over those sets."""
    return [{**r, "mean_roc": float(np.mean([r["per_set"][s] for s in stems]))} for r in rows]


def choose_on(
    rows: list[dict[str, Any]],
    weighted: dict[tuple[str, ...], list[dict[str, Any]]],
    stems: list[str],
) -> dict[str, Any]:
    """``select_ensemble``'s choice over ``stems``: unweighted rows, then the weightings of
    that pool's own best subsets (taken from ``weighted``, filled on demand by the caller)."""
    pool = restricted(rows, stems)
    for seed in se.weighted_seeds(pool):
        pool += restricted(weighted[key(seed)], stems)
    return se.choose(pool)[0]


def key(row: dict[str, Any]) -> tuple[str, ...]:
    """A subset and its normaliser, as one hashable key."""
    return (*row["members"], row["normaliser"])


def current_default(
    saved: dict[str, np.ndarray], stems: list[str], usable: tuple[str, ...]
) -> dict[str, Any]:
    """The configuration ``DefaultEnsemble`` has now, scored from the cache."""
    from audit_lib.detect.scoring.ensemble import (
        DEFAULT_HOW,
        DEFAULT_MEMBERS,
        DEFAULT_NORMALISER,
        DEFAULT_WEIGHTS,
    )

    weights = None if DEFAULT_WEIGHTS is None else [tuple(int(w) for w in DEFAULT_WEIGHTS)]
    rows = se.evaluate(saved, stems, usable, [DEFAULT_MEMBERS], weights)
    return next(r for r in rows if (r["how"], r["normaliser"]) == (DEFAULT_HOW, DEFAULT_NORMALISER))


def main() -> None:
    """Fill the cache, search once over all 41 sets, choose per fold and on all sets."""
    if not ODDS.is_dir() or not se.ADBENCH.is_dir():
        sys.exit(f"ODDS or ADBench sets not found under {ODDS.parent}")
    t_start = time.perf_counter()
    selection = sorted(p for p in se.ADBENCH.glob("*.npz") if p.stem not in se.EXCLUDED)
    odds = sorted(ODDS.glob("*.npz"))
    saved = dict(np.load(se.CACHE)) if se.CACHE.exists() else {}
    se.fill_cache(saved, selection + odds)
    stems, odds_stems = [p.stem for p in selection + odds], [p.stem for p in odds]
    usable, failures = se.usable_members(saved, stems)
    rows = se.evaluate(saved, stems, usable, se.subsets(usable))
    folds = {s: [t for t in stems if t != s] for s in odds_stems} | {"all 41": stems}
    weighted: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for fold_stems in folds.values():
        for seed in se.weighted_seeds(restricted(rows, fold_stems)):
            if key(seed) not in weighted:
                weighted[key(seed)] = se.weighted_rows(saved, stems, usable, seed)
    chosen = {name: choose_on(rows, weighted, fold) for name, fold in folds.items()}
    held_out = {s: chosen[s]["per_set"][s] for s in odds_stems}
    estimate = float(np.mean(list(held_out.values())))
    final = chosen["all 41"]
    in_sample = float(np.mean([final["per_set"][s] for s in odds_stems]))
    check = current_default(saved, odds_stems, usable)
    bench = json.loads((se.RESULTS / "odds.json").read_text())["mean"]["ours"]
    for s in odds_stems:
        print(f"{s:12s} held out {held_out[s]:.4f}  chosen without it: {se.label(chosen[s])}")
    print(f"\nheld-out estimate (mean of 17): {estimate:.4f} (target {TARGET})")
    print(f"chosen on all 41: {se.label(final)}; ODDS mean in-sample {in_sample:.4f}")
    print(f"cache check: current default on ODDS {check['mean_roc']:.4f}, bench_odds {bench:.4f}")
    out = {
        "protocol": __doc__.split("\n\n")[2] if __doc__ else "",
        "sets": stems,
        "odds_sets": odds_stems,
        "usable": list(usable),
        "failures": failures,
        "held_out": held_out,
        "held_out_estimate": estimate,
        "target": TARGET,
        "per_fold_choice": {s: se.label(c) for s, c in chosen.items()},
        "final": final,
        "final_odds_in_sample": in_sample,
        "final_selection_sets_mean": float(
            np.mean([final["per_set"][s] for s in stems if s not in odds_stems])
        ),
        "cache_check": {"current_default_from_cache": check["mean_roc"], "bench_odds": bench},
        "total_seconds": round(time.perf_counter() - t_start, 1),
        "load_average_end": os.getloadavg()[0],
    }
    (se.RESULTS / "select_ensemble_lodo.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
