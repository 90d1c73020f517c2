"""Snapshot detection outputs and compare two snapshots row for row (no figure may move).

A change that must not move a figure (a remodel, a speed-up) records the outputs before and
after and compares them: every theme's findings and every side result (the theft score of
every customer) of every bureau of the given marts, over one period.

Run::

    python benchmarks/outputs_snapshot.py write OUT MART [MART ...] [--period 2025-01..2025-12]
    python benchmarks/outputs_snapshot.py compare BEFORE AFTER

``write`` takes the installed ``audit_lib``: to snapshot an older commit, run it from a
checkout of that commit (``git worktree add``) with ``PYTHONPATH`` set to it. ``compare``
reports each file identical (``assert_frame_equal``, exact) or how it differs; columns only
the second snapshot has are listed, not compared; exit status 1 when anything differs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from pandas.testing import assert_frame_equal


def write(out: Path, marts: list[Path], period: str) -> None:
    """Findings and extras of every bureau of each mart to ``out/<city>/<bureau>_*.parquet``."""
    from audit_lib.data.access import Mart
    from audit_lib.data.periods import parse_period
    from audit_lib.detect.run import detect

    start, end = parse_period(period)
    for mart_dir in marts:
        city = mart_dir.resolve().parent.name
        folder = out / city
        folder.mkdir(parents=True, exist_ok=True)
        with Mart(mart_dir) as mart:
            for bureau in mart.bureau_codes():
                run = detect(mart, bureau, start, end)
                run.findings.to_parquet(folder / f"{bureau}_findings.parquet", index=False)
                for name, frame in run.extras.items():
                    frame.to_parquet(folder / f"{bureau}_extra_{name}.parquet")
                print(f"{city} {bureau}: {len(run.findings)} findings", flush=True)


def compare(before: Path, after: Path) -> bool:
    """Print, per file of ``before``, whether ``after`` holds the same rows; True if all do."""
    same = True
    for rel in sorted(p.relative_to(before) for p in before.rglob("*.parquet")):
        if not (after / rel).is_file():
            print(f"{rel}: missing after")
            same = False
            continue
        old, new = pd.read_parquet(before / rel), pd.read_parquet(after / rel)
        added = [c for c in new.columns if c not in old.columns]
        try:
            assert_frame_equal(old, new[old.columns], check_exact=True)
            print(
                f"{rel}: identical ({len(old)} rows)" + (f"; new columns {added}" if added else "")
            )
        except (AssertionError, KeyError) as exc:
            same = False
            print(f"{rel}: DIFFERENT: {str(exc).splitlines()[0:3]}")
    print("all identical" if same else "differences found")
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="snapshot the outputs of the installed audit_lib")
    w.add_argument("out", type=Path)
    w.add_argument("marts", type=Path, nargs="+")
    w.add_argument("--period", default="2025-01..2025-12")
    c = sub.add_parser("compare", help="compare two snapshots row for row")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "write":
        write(args.out, args.marts, args.period)
    elif not compare(args.before, args.after):
        sys.exit(1)


if __name__ == "__main__":
    main()
