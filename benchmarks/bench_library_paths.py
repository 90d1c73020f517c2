"""Benchmark: each of our compiled paths through a library's scoring against the library's own.

Issue #17's rule: a compiled re-implementation of a library's scoring stays only where it is
at least 1.5× faster on the 10⁶-customer path and a test checks it equal to the library at
the pinned version; otherwise the library is called. This script times, in the same run and
alternating (ours first in even runs, the library first in odd ones), each such path of the
theft score against the library call it stands for, on rows like the theft score's:

- ``iforest``: :class:`~audit_lib.detect.scoring.ensemble.FastIForest` fit (its training
  scores) against pyod's ``IForest`` fit, same seed;
- ``inne``: :class:`~audit_lib.detect.scoring.ensemble.FastINNE` against pyod's ``INNE``;
- ``ecdf``: ECOD and COPOD fitted sharing one
  :class:`~audit_lib.detect.scoring.ecdf.ColumnTails` against pyod's ECOD and COPOD;
- ``hbos``: the first HBOS fit of a fresh process (a child process per run: this path is a
  compile-time cache, not a re-implementation, and only a new process pays the compilation),
  :class:`~audit_lib.detect.scoring.ensemble.CachedHBOS` against pyod's ``HBOS``.

A fifth path, ``boosting`` (``theft.predict_positive``, a compiled walk of the
self-supervised view's trees, against ``model.predict_proba(X)[:, 1]``), was measured by
this script at 1.38× (150 trees of 15 leaves, fitted as ``theft._classifier`` on 40,000
rows, scoring 10⁶ rows; the same numbers) and removed: the theft score calls
``predict_proba``. Its figures stay in the results file (``paths.boosting``), which keeps
the paths a run does not measure.

Rows: standard normal features, every fifth column heavy-tailed (Student t, 2 degrees of
freedom), clipped at ±20 as ``robust_standardise`` does and made one-sided as
``orient_features`` does (the theft score's unsupervised view). Timed calls run under
``threadpool_limits(1, "openmp")``, as in the theft score (BLAS threads left as they are);
numba kernels are compiled before the timed runs (except in ``hbos``'s children). Each path
checks that both give the same numbers (``np.array_equal``; INNE also at the ``rtol=1e-12``
of its test) and prints it. Ratio = the library's median seconds ÷ ours. Peak RSS per path
(Linux: the process's high-water mark, reset before each path; ``hbos``: its children's).

Run: ``.venv/bin/python benchmarks/bench_library_paths.py [--rows 1000000] [--features 16]
[--runs 3] [--paths iforest inne ecdf hbos]``
Results: ``benchmarks/results/library_paths.json`` (medians, all runs, CPU seconds, peak RSS).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "library_paths.json"
PATHS = ("iforest", "inne", "ecdf", "hbos")
REMOVED = {
    "boosting": "predict_positive removed (1.38x < 1.5x): the theft score calls "
    "model.predict_proba",
}  # paths measured by an earlier version of this script, their code since removed
KEEP_RATIO = 1.5
Scorer = Callable[[], np.ndarray]


def oriented_rows(rows: int, features: int, seed: int = 0) -> np.ndarray:
    """Standardised, clipped, one-sided rows like the theft score's unsupervised view."""
    from audit_lib.detect.scoring.theft import DIRECTIONS

    z = two_sided_rows(rows, features, seed)
    signs = list(DIRECTIONS.values())
    sign = np.array([signs[j % len(signs)] for j in range(features)], dtype=np.float64)
    return np.where(sign == 0, np.abs(z), np.maximum(z * sign, 0.0))


def two_sided_rows(rows: int, features: int, seed: int = 0) -> np.ndarray:
    """Standard normal rows, every fifth column heavy-tailed, clipped at ±20."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((rows, features))
    heavy = np.arange(0, features, 5)
    z[:, heavy] = rng.standard_t(2, size=(rows, len(heavy)))
    return np.clip(z, -20.0, 20.0)


def peak_rss_mb() -> float:
    """This process's peak RSS in MB: Linux's high-water mark (``VmHWM``, which
    :func:`reset_peak_rss` resets), else ``ru_maxrss`` (the whole life of the process)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> None:
    """Start this process's high-water mark again from its current RSS (Linux)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def timed(fn: Scorer) -> tuple[float, float, np.ndarray]:
    """Wall seconds, CPU seconds (every thread of the process) and the result of ``fn()``."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def compare(ours: np.ndarray, library: np.ndarray, rtol: float | None) -> dict[str, Any]:
    """Exact equality, the largest difference and (with ``rtol``) the tests' tolerance."""
    diff = np.abs(np.asarray(ours, dtype=np.float64) - np.asarray(library, dtype=np.float64))
    out: dict[str, Any] = {
        "array_equal": bool(np.array_equal(ours, library)),
        "max_abs_diff": float(np.nanmax(diff)) if diff.size else 0.0,
    }
    if rtol is not None:
        out["allclose_rtol"] = rtol
        out["allclose"] = bool(np.allclose(ours, library, rtol=rtol, atol=0.0))
    out["equal"] = out["allclose"] if rtol is not None else out["array_equal"]
    return out


def iforest_path(x: np.ndarray) -> tuple[Scorer, Scorer]:
    from pyod.models.iforest import IForest

    from audit_lib.detect.scoring.ensemble import FastIForest

    def ours() -> np.ndarray:
        return np.asarray(FastIForest(contamination=0.1, random_state=0).fit(x).decision_scores_)

    def library() -> np.ndarray:
        return np.asarray(IForest(contamination=0.1, random_state=0).fit(x).decision_scores_)

    return ours, library


def inne_path(x: np.ndarray) -> tuple[Scorer, Scorer]:
    from pyod.models.inne import INNE

    from audit_lib.detect.scoring.ensemble import FastINNE

    def ours() -> np.ndarray:
        return np.asarray(FastINNE(contamination=0.1, random_state=0).fit(x).decision_scores_)

    def library() -> np.ndarray:
        return np.asarray(INNE(contamination=0.1, random_state=0).fit(x).decision_scores_)

    return ours, library


def ecdf_path(x: np.ndarray) -> tuple[Scorer, Scorer]:
    from pyod.models.copod import COPOD
    from pyod.models.ecod import ECOD

    from audit_lib.detect.scoring.ecdf import ColumnTails, SharedCOPOD, SharedECOD

    def ours() -> np.ndarray:
        tails = ColumnTails()  # as DefaultEnsemble.fit lends one to both
        ecod = SharedECOD(contamination=0.1).fit(x, tails=tails).decision_scores_
        copod = SharedCOPOD(contamination=0.1).fit(x, tails=tails).decision_scores_
        return np.stack([ecod, copod])

    def library() -> np.ndarray:
        ecod = ECOD(contamination=0.1).fit(x).decision_scores_
        copod = COPOD(contamination=0.1).fit(x).decision_scores_
        return np.stack([ecod, copod])

    return ours, library


def hbos_child(args: argparse.Namespace) -> None:
    """In a fresh process: time the first and the second HBOS fit, save the scores."""
    from pyod.models.hbos import HBOS

    from audit_lib.detect.scoring.ensemble import CachedHBOS
    from audit_lib.detect.scoring.theft import OPENMP_THREADS

    x = oriented_rows(args.rows, args.features)
    cls = CachedHBOS if args.child == "ours" else HBOS
    with threadpool_limits(limits=OPENMP_THREADS, user_api="openmp"):
        first, first_cpu, scores = timed(lambda: cls(contamination=0.1).fit(x).decision_scores_)
        second, _, _ = timed(lambda: cls(contamination=0.1).fit(x).decision_scores_)
    np.save(args.child_out, scores)
    print(json.dumps({"seconds": first, "cpu_seconds": first_cpu, "second_fit_seconds": second,
                      "peak_rss_mb": peak_rss_mb()}))  # fmt: skip


def run_hbos(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Alternating fresh processes, ours (after one untimed run that fills numba's on-disk
    cache, as any earlier run on the machine does) and pyod's."""

    def child(which: str) -> tuple[dict[str, Any], np.ndarray]:
        out = workdir / f"hbos-{which}.npy"
        cmd = [sys.executable, __file__, "--child", which, "--child-out", str(out),
               "--rows", str(args.rows), "--features", str(args.features)]  # fmt: skip
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        return json.loads(done.stdout.strip().splitlines()[-1]), np.load(out)

    child("ours")  # fills the cache if no earlier run did
    timings: dict[str, list[dict[str, Any]]] = {"ours": [], "library": []}
    results: dict[str, np.ndarray] = {}
    for run in range(args.runs):
        for which in ("ours", "library") if run % 2 == 0 else ("library", "ours"):
            timing, results[which] = child(which)
            timings[which].append(timing)
    out = summary(
        [t["seconds"] for t in timings["ours"]], [t["seconds"] for t in timings["library"]],
        [t["cpu_seconds"] for t in timings["ours"]],
        [t["cpu_seconds"] for t in timings["library"]],
    )  # fmt: skip
    out["second_fit_seconds"] = {w: [t["second_fit_seconds"] for t in timings[w]] for w in timings}
    out["peak_rss_mb"] = max(t["peak_rss_mb"] for w in timings for t in timings[w])
    out.update(compare(results["ours"], results["library"], None))
    return out


def summary(
    ours: list[float], library: list[float], ours_cpu: list[float], library_cpu: list[float]
) -> dict[str, Any]:
    lib_s, ours_s = statistics.median(library), statistics.median(ours)
    return {
        "library_seconds_median": lib_s,
        "ours_seconds_median": ours_s,
        "ratio": lib_s / ours_s,
        "library_cpu_seconds_median": statistics.median(library_cpu),
        "ours_cpu_seconds_median": statistics.median(ours_cpu),
        "ratio_cpu": statistics.median(library_cpu) / statistics.median(ours_cpu),
        "library_seconds": library,
        "ours_seconds": ours,
        "library_cpu_seconds": library_cpu,
        "ours_cpu_seconds": ours_cpu,
    }


def run_in_process(
    make: Callable[[], tuple[Scorer, Scorer]], warm: Callable[[], tuple[Scorer, Scorer]],
    runs: int, rtol: float | None,
) -> dict[str, Any]:  # fmt: skip
    """Warm both paths up on a few rows, then ``runs`` alternating timed runs of each."""
    from audit_lib.detect.scoring.theft import OPENMP_THREADS

    with threadpool_limits(limits=OPENMP_THREADS, user_api="openmp"):
        for fn in warm():
            fn()
        ours, library = make()
        wall: dict[str, list[float]] = {"ours": [], "library": []}
        cpu: dict[str, list[float]] = {"ours": [], "library": []}
        results: dict[str, np.ndarray] = {}
        for run in range(runs):
            order = (("ours", ours), ("library", library))
            for which, fn in order if run % 2 == 0 else order[::-1]:
                seconds, cpu_seconds, results[which] = timed(fn)
                wall[which].append(seconds)
                cpu[which].append(cpu_seconds)
                print(f"  {which}: {seconds:.2f} s ({cpu_seconds:.2f} s CPU)", flush=True)
    out = summary(wall["ours"], wall["library"], cpu["ours"], cpu["library"])
    out.update(compare(results["ours"], results["library"], rtol))
    return out


def main() -> None:
    """Time every path and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file")
    parser.add_argument("--child", choices=("ours", "library"), help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        hbos_child(args)
        return

    import numba
    import pyod
    import scipy
    import sklearn

    x = oriented_rows(args.rows, args.features)
    small = x[:20_000]
    paths: dict[str, dict[str, Any]] = {}
    versions = {
        "pyod": pyod.__version__,
        "scikit-learn": sklearn.__version__,
        "numba": numba.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }
    described = {
        "iforest": ("FastIForest fit, decision_scores_", "pyod IForest fit, decision_scores_"),
        "inne": ("FastINNE fit, decision_scores_", "pyod INNE fit, decision_scores_"),
        "ecdf": ("SharedECOD + SharedCOPOD fit, one ColumnTails", "pyod ECOD + COPOD fit"),
        "hbos": ("CachedHBOS, first fit of a fresh process",
                 "pyod HBOS, first fit of a fresh process"),
    }  # fmt: skip
    for name in args.paths:
        print(f"{name}:", flush=True)
        reset_peak_rss()
        if name == "iforest":
            paths[name] = run_in_process(
                lambda: iforest_path(x), lambda: iforest_path(small), args.runs, None
            )
        elif name == "inne":
            paths[name] = run_in_process(
                lambda: inne_path(x), lambda: inne_path(small), args.runs, 1e-12
            )
        elif name == "ecdf":
            paths[name] = run_in_process(
                lambda: ecdf_path(x), lambda: ecdf_path(small), args.runs, None
            )
        else:
            with tempfile.TemporaryDirectory() as tmp:
                paths[name] = run_hbos(args, Path(tmp))
        result = paths[name]
        result.setdefault("peak_rss_mb", peak_rss_mb())
        result["ours"], result["library"] = described[name]
        result["kept"] = bool(result["ratio"] >= KEEP_RATIO and result["equal"])
        result.update(rows=args.rows, features=args.features, runs=args.runs, versions=versions,
                      measured=dt.date.today().isoformat())  # fmt: skip
        print(
            f"  library {result['library_seconds_median']:.2f} s, ours "
            f"{result['ours_seconds_median']:.2f} s, ratio {result['ratio']:.2f}, "
            f"equal {'yes' if result['equal'] else 'NO'} "
            f"(array_equal {result['array_equal']}, max |diff| {result['max_abs_diff']:.3g})",
            flush=True,
        )

    print("| path | library (s) | ours (s) | ratio | CPU ratio | equal |")
    print("|---|---|---|---|---|---|")
    for name, r in paths.items():
        print(f"| {name} | {r['library_seconds_median']:.2f} | {r['ours_seconds_median']:.2f} | "
              f"{r['ratio']:.2f} | {r['ratio_cpu']:.2f} | {'yes' if r['equal'] else 'no'} |")  # fmt: skip
    # paths not measured in this run keep their figures from the results file
    earlier = json.loads(args.out.read_text()).get("paths", {}) if args.out.exists() else {}
    merged = {**earlier, **paths}
    for name, note in REMOVED.items():
        if name in merged:
            merged[name].update(kept=False, removed=note)
    out = {
        "keep_ratio": KEEP_RATIO,
        "conditions": 'threadpool_limits(1, "openmp") as in the theft score; BLAS threads '
        "as they are; numba compiled before timing (hbos: fresh processes)",
        "cpu_count": os.cpu_count(),
        "paths": merged,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
