"""What the monitoring notebook calls: detection for a bureau and period, and tasks.

Each function is one notebook cell's work; the notebook shows what it returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from audit_lib.data.access import Mart
from audit_lib.data.periods import parse_period
from audit_lib.db import create_engine, session_factory
from audit_lib.detect.run import DetectionRun, detect
from audit_lib.tasks.intake import tasks_from_findings
from audit_lib.tasks.service import get_user

TOP_COLUMNS = ["theme_id", "entity", "score", "severity", "money_at_risk", "reason_zh", "reason_en"]


def monitor(
    mart: str,
    bureau: str,
    period: str,
    *,
    run_id: str | None = None,
    notebook: str | None = None,
    overrides: Mapping[str, Mapping[str, float | int | str]] | None = None,
) -> DetectionRun:
    """Run every published theme for ``bureau`` over ``period`` (e.g. ``2024-01..2024-12``).

    With ``notebook`` (the executed notebook's path, set by ``audit run``) the findings are also
    written beside it as ``findings.parquet``.
    """
    start, end = parse_period(period)
    run = detect(
        Mart(mart), bureau, start, end, run_id=run_id or None, notebook=notebook or None,
        overrides=overrides,
    )  # fmt: skip
    if notebook:  # keep the findings beside the executed notebook, as a run artefact
        run.findings.to_parquet(Path(notebook).with_name("findings.parquet"), index=False)
    return run


def top_findings(findings: pd.DataFrame, per_theme: int = 5) -> pd.DataFrame:
    """The highest-scoring findings of each theme, for the report."""
    ranked = findings.sort_values("score", ascending=False)
    return ranked.groupby("theme_id").head(per_theme)[TOP_COLUMNS].reset_index(drop=True)


def raise_tasks(findings: pd.DataFrame, actor: str, db_url: str | None = None) -> pd.DataFrame:
    """Group findings into audit tasks (idempotent: re-running a period adds nothing).

    Returns a one-row summary: tasks created, findings linked, findings already known.
    """
    engine = create_engine(db_url or None)
    try:
        with session_factory(engine)() as session:
            result = tasks_from_findings(session, findings, get_user(session, actor))
            session.commit()
    finally:
        engine.dispose()
    return pd.DataFrame(
        [
            {
                "tasks_created": result.tasks_created,
                "findings_linked": result.findings_linked,
                "findings_already_known": result.findings_skipped,
            }
        ]
    )


def line_loss_overview(run: DetectionRun) -> pd.DataFrame:
    """Station areas per loss class (台区线损分类) and month, from the run's context."""
    from audit_lib.data.balance import LOSS_CLASSES, monthly_loss

    if run.context is None:
        raise ValueError("the detection run kept no context")
    table = monthly_loss(run.context, run.context.theme("area_line_loss").params)
    counts = table.pivot_table(
        index="month", columns="loss_class", values="area_id", aggfunc="count"
    )
    counts = counts.reindex(columns=list(LOSS_CLASSES), fill_value=0).fillna(0).astype(int)
    counts.columns = [f"{LOSS_CLASSES[c][0]} {LOSS_CLASSES[c][1]}" for c in counts.columns]
    return counts
