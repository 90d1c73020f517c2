"""Run published themes over one bureau and period and collect their findings."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd

from audit_lib.data.access import Mart
from audit_lib.detect.context import DetectionContext
from audit_lib.detect.findings import empty_findings, make_findings
from audit_lib.detect.themes import THEME_DETECTORS
from audit_lib.errors import ConfigError
from audit_lib.themes.catalogue import get_theme

log = logging.getLogger(__name__)

HISTORY_DAYS = 365
BESIDE = frozenset({"theft_suspicion"})
"""Themes run in a thread of their own while the others run one after another: the theft
theme is the longest and leaves part of the cores idle; the others' kernels, Arrow and DuckDB
release the GIL. Each theme's findings do not depend on what runs beside it."""


@dataclass
class DetectionRun:
    """Findings of a run and what it took: seconds and hits per theme."""

    findings: pd.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    extras: dict[str, pd.DataFrame] = field(default_factory=dict)
    context: DetectionContext | None = None
    context_seconds: float = 0.0
    """Seconds to build the shared inputs before the themes, when they were built up front
    (themes run in two threads); otherwise the first theme that needs them builds them."""
    skipped: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Themes not run because the mart lacks tables they read (theme id → those tables)."""

    def summary(self) -> pd.DataFrame:
        """One row per theme: names, hits, seconds."""
        rows = []
        for theme_id, n in self.hits.items():
            theme = get_theme(theme_id)
            rows.append(
                (theme_id, theme.name_zh, theme.name_en, n, round(self.seconds[theme_id], 2), "")
            )
        for theme_id, missing in self.skipped.items():
            theme = get_theme(theme_id)
            rows.append((theme_id, theme.name_zh, theme.name_en, 0, 0.0,
                         f"未运行：集市缺少 {', '.join(missing)} / skipped: no {', '.join(missing)}"))  # fmt: skip
        frame = pd.DataFrame(
            rows, columns=["theme", "name_zh", "name_en", "findings", "seconds", "note"]
        )
        return frame if self.skipped else frame.drop(columns="note")  # no empty column


def resolve_themes(themes: Iterable[str] | None) -> list[str]:
    """The theme ids to run (default: every theme with a detector), validated."""
    ids = list(themes) if themes else list(THEME_DETECTORS)
    unknown = [t for t in ids if t not in THEME_DETECTORS]
    if unknown:
        raise ConfigError(f"unknown theme {unknown[0]!r}; known: {', '.join(THEME_DETECTORS)}")
    return ids


def detect(
    mart: Mart,
    bureau: str,
    start: dt.date,
    end: dt.date,
    themes: Iterable[str] | None = None,
    *,
    run_id: str | None = None,
    notebook: str | None = None,
    overrides: Mapping[str, Mapping[str, float | int | str]] | None = None,
) -> DetectionRun:
    """Run ``themes`` (default: all) for ``bureau`` over ``start``..``end``; a theme whose
    tables (:attr:`~audit_lib.themes.catalogue.Theme.tables`) the mart lacks is skipped and
    named in :attr:`DetectionRun.skipped`.

    The customers × days matrix (with :data:`HISTORY_DAYS` of history before ``start``
    where the mart has it) is built once and shared by every theme. ``overrides`` replaces
    theme parameters for this run (e.g. a bureau's own high-loss threshold); the findings'
    evidence then carries the parameters used. The themes of :data:`BESIDE` run in a
    second thread while the others run in this one (shared inputs built first); findings come
    in the order of ``themes`` whatever finished first.
    """
    held = mart.tables()
    skipped = {}
    for theme_id in resolve_themes(themes):
        missing = tuple(t for t in get_theme(theme_id).tables if t not in held)
        if missing:  # a mart of readings alone (the SGCC set) still runs what it can
            skipped[theme_id] = missing
            log.warning("%s %s: skipped, the mart holds no %s", bureau, theme_id, missing)
    ids = [t for t in resolve_themes(themes) if t not in skipped]
    ctx = DetectionContext(
        mart, bureau, start, end, history_days=HISTORY_DAYS, overrides=dict(overrides or {})
    )
    beside = [t for t in ids if t in BESIDE] if len(ids) > 1 else []
    context_seconds = 0.0
    if beside:
        t0 = time.perf_counter()
        warm(ctx)  # before a second thread reads them: each cached input is built once
        context_seconds = time.perf_counter() - t0

    def run_theme(theme_id: str) -> tuple[pd.DataFrame, float]:
        theme = ctx.theme(theme_id)
        t0 = time.perf_counter()
        raw = THEME_DETECTORS[theme_id](ctx, theme)
        found = make_findings(
            theme, raw, bureau=bureau, period_start=start, period_end=end,
            run_id=run_id, notebook=notebook,
        )  # fmt: skip
        took = time.perf_counter() - t0
        log.info("%s %s: %d findings in %.1f s", bureau, theme_id, len(found), took)
        return found, took

    done: dict[str, tuple[pd.DataFrame, float]] = {}
    with ThreadPoolExecutor(max_workers=1) as pool:
        futures = {t: pool.submit(run_theme, t) for t in beside}
        for theme_id in ids:
            if theme_id not in futures:
                done[theme_id] = run_theme(theme_id)
        done.update({t: f.result() for t, f in futures.items()})
    frames = [done[t][0] for t in ids if len(done[t][0])]
    seconds = {t: done[t][1] for t in ids}
    hits = {t: len(done[t][0]) for t in ids}
    findings = pd.concat(frames, ignore_index=True) if frames else empty_findings()
    return DetectionRun(findings, seconds, hits, ctx.extras, ctx, context_seconds, skipped)


def warm(ctx: DetectionContext) -> None:
    """Build the context's shared inputs now (matrix, open days, customers, classes, prices,
    meters, meter alarms of the period and of the matrix's months), so that themes running in
    two threads only read them (the areas' energy balance, which the theft theme needs too,
    is built once under a lock by whichever thread asks first)."""
    names = ("customers", "matrix", "open_mask", "class_codes", "prices", "meters",
             "meter_events", "loaded_meter_events")  # fmt: skip
    for name in names:
        getattr(ctx, name)
