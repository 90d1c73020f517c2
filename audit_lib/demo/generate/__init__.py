"""A realistic Chongqing-like utility, generated (demo data with a truth table).

``generate_demo(out_dir, config)`` writes ``out_dir/mart`` (every table of
:mod:`audit_lib.data.schema`), ``out_dir/truth.parquet`` and ``out_dir/manifest.json``, bureau
by bureau so memory stays bounded by one bureau's customers × days matrix.
``generate_bureau(config, i)`` returns one bureau's tables in memory (for tests and notebooks).
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from audit_lib.demo.generate.bureau import build_bureau
from audit_lib.demo.generate.config import DEFAULT_RATES, DemoConfig, bureau_sizes, parse_date
from audit_lib.demo.generate.source_copy import copy_bureau, copy_city, prepare_source, sqlite_url
from audit_lib.demo.generate.writer import (
    empty_counts,
    prepare_out,
    write_bureau,
    write_city,
    write_manifest,
    write_truth,
)
from audit_lib.data.integrity import record_manifest
from audit_lib.data.mart import conform
from audit_lib.data.schema import READINGS
from audit_lib.demo.generate.city import demo_bureau

__all__ = [
    "DEFAULT_RATES",
    "DemoConfig",
    "Summary",
    "generate_bureau",
    "generate_demo",
    "parse_date",
]


@dataclass
class Summary:
    """What :func:`generate_demo` wrote."""

    out_dir: Path
    rows: dict[str, int]
    truth_rows: int
    truth_by_kind: dict[str, int]
    seconds: float
    bureau_seconds: dict[str, float] = field(default_factory=dict)


def generate_bureau(config: DemoConfig, bureau_index: int) -> dict[str, pa.Table]:
    """All tables of one bureau in memory, readings included, plus ``truth``.

    Parameters
    ----------
    config
        What to generate.
    bureau_index
        0-based index into the city's bureaus (must be < ``config.bureaus``).
    """
    if not 0 <= bureau_index < config.bureaus:
        raise IndexError(f"bureau_index {bureau_index} outside 0..{config.bureaus - 1}")
    data = build_bureau(config, bureau_index)
    months = [data.readings_month(m) for m in range(len(data.cal.month_labels))]
    readings = conform(READINGS, pa.concat_tables(months), source=f"generated readings {data.code}")
    return {**data.tables, "readings": readings, "truth": data.truth}


def _run_bureau(
    args: tuple[Path, DemoConfig, int, str | None],
) -> tuple[str, dict[str, int], pa.Table, float]:
    mart, config, index, source = args
    t0 = time.perf_counter()
    data = build_bureau(config, index)
    counts = write_bureau(mart, data)
    if source is not None:
        copy_bureau(source, data)
    return data.code, counts, data.truth, time.perf_counter() - t0


def generate_demo(
    out_dir: Path | str,
    config: DemoConfig,
    *,
    jobs: int = 1,
    source_db: Path | str | None = None,
) -> Summary:
    """Generate the whole city into ``out_dir`` (see the module docstring).

    Parameters
    ----------
    out_dir
        Output folder; a previous demo data set there is replaced.
    config
        What to generate.
    jobs
        Bureaus generated in parallel (processes); the output does not depend on it.
    source_db
        Also write an SG186-shaped SQLite copy here (for ``audit ingest``); bureaus are
        then generated one at a time (one writer per SQLite file).
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    old = out / "manifest.json"
    previous = json.loads(old.read_text()).get("source_db") if old.exists() else None
    source = None
    if source_db is not None:
        prepare_source(Path(source_db), previous)
        source = sqlite_url(Path(source_db))
        jobs = 1
    prepare_out(out)
    mart = out / "mart"
    rows = empty_counts()
    rows.update(write_city(mart, config.bureaus))
    if source is not None:
        copy_city(source, config.bureaus)
    sizes = bureau_sizes(config)
    tasks = [(mart, config, i, source) for i in range(config.bureaus)]
    if jobs > 1 and config.bureaus > 1:
        # forkserver: workers fork from a fresh, thread-free process that has imported the
        # generator once (forking a process whose Arrow threads run can deadlock)
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["audit_lib.demo.generate"])
        largest_first = sorted(tasks, key=lambda t: -sizes[t[2]])  # balances the workers
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            out_of_order = list(pool.map(_run_bureau, largest_first))
        done = {t[2]: r for t, r in zip(largest_first, out_of_order, strict=True)}
        results = [done[i] for i in range(config.bureaus)]  # bureau order: same files
    else:
        results = [_run_bureau(t) for t in tasks]
    truth_parts, seconds = [], {}
    for code, counts, truth, took in results:
        for name, value in counts.items():
            rows[name] += value
        truth_parts.append(truth)
        seconds[code] = round(took, 3)
    truth = write_truth(out, truth_parts)
    record_manifest(out / "mart")  # every file with its size and hash: detection checks them
    by_kind = dict(sorted(Counter(truth["kind"].to_pylist()).items()))
    total = time.perf_counter() - t0
    write_manifest(
        out,
        {
            "generator": "audit_lib.demo.generate",
            "parameters": config.as_dict(),
            "seed": config.seed,
            "bureaus": {
                demo_bureau(i).code: {"customers": int(sizes[i])} for i in range(config.bureaus)
            },
            "rows": rows,
            "truth_rows": truth.num_rows,
            "truth_by_kind": by_kind,
            "timings_s": {"total": round(total, 3), "bureaus": seconds, "jobs": jobs},
            "source_db": str(Path(source_db).resolve()) if source_db is not None else None,
        },
    )
    return Summary(out, rows, truth.num_rows, by_kind, total, seconds)
