"""Run published themes over one bureau and period and collect their findings."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from audit_lib.data.access import Mart
from audit_lib.detect.context import DetectionContext
from audit_lib.detect.findings import empty_findings, make_findings
from audit_lib.detect.rules import THEME_DETECTORS
from audit_lib.errors import ConfigError
from audit_lib.themes.catalogue import get_theme, with_params

log = logging.getLogger(__name__)

HISTORY_DAYS = 365


@dataclass
class DetectionRun:
    """Findings of a run and what it took: seconds and hits per theme."""

    findings: pd.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    extras: dict[str, pd.DataFrame] = field(default_factory=dict)
    context: DetectionContext | None = None

    def summary(self) -> pd.DataFrame:
        """One row per theme: names, hits, seconds."""
        rows = []
        for theme_id, n in self.hits.items():
            theme = get_theme(theme_id)
            rows.append(
                (theme_id, theme.name_zh, theme.name_en, n, round(self.seconds[theme_id], 2))
            )
        return pd.DataFrame(rows, columns=["theme", "name_zh", "name_en", "findings", "seconds"])


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
    """Run ``themes`` (default: all) for ``bureau`` over ``start``..``end``.

    The customers × days matrix (with :data:`HISTORY_DAYS` of history before ``start``
    where the mart has it) is built once and shared by every theme. ``overrides`` replaces
    theme parameters for this run (e.g. a bureau's own high-loss threshold); the findings'
    evidence then carries the parameters used.
    """
    ids = resolve_themes(themes)
    ctx = DetectionContext(mart, bureau, start, end, history_days=HISTORY_DAYS)
    frames, seconds, hits = [], {}, {}
    for theme_id in ids:
        theme = with_params(get_theme(theme_id), (overrides or {}).get(theme_id))
        t0 = time.perf_counter()
        raw = THEME_DETECTORS[theme_id](ctx, theme)
        found = make_findings(
            theme, raw, bureau=bureau, period_start=start, period_end=end,
            run_id=run_id, notebook=notebook,
        )  # fmt: skip
        seconds[theme_id] = time.perf_counter() - t0
        hits[theme_id] = len(found)
        log.info("%s %s: %d findings in %.1f s", bureau, theme_id, len(found), seconds[theme_id])
        if len(found):
            frames.append(found)
    findings = pd.concat(frames, ignore_index=True) if frames else empty_findings()
    return DetectionRun(findings, seconds, hits, ctx.extras, ctx)
