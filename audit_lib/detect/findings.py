"""Findings: the one frame every theme produces and the task layer consumes.

One row per entity (customer or station area) × theme × period, with the columns of
:data:`audit_lib.data.schema.FINDINGS`. Detectors hand over a small frame of *hits*; this module
adds the identity, the theme, the period and the bookkeeping columns.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from audit_lib.data.schema import FINDINGS
from audit_lib.themes.catalogue import Theme

FINDING_COLUMNS = FINDINGS.names


def finding_id(theme_id: str, entity: str, start: date, end: date) -> str:
    """Deterministic id of a finding, so re-running a period finds the same ids."""
    raw = f"{theme_id}|{entity}|{start.isoformat()}|{end.isoformat()}"
    return hashlib.sha1(raw.encode()).hexdigest()[:20]


def empty_findings() -> pd.DataFrame:
    """A findings frame with no rows and the right columns."""
    return pd.DataFrame({c: pd.Series(dtype="object") for c in FINDING_COLUMNS})


def customer_hits(customers: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """The start of a hits frame for the customers at ``rows`` of ``customers``: their
    ``entity`` (户号), ``station_id`` and ``area_id``."""
    cust = customers.iloc[rows]
    return pd.DataFrame(
        {
            "entity": cust["cons_no"].to_numpy(),
            "station_id": cust["station_id"].to_numpy(),
            "area_id": cust["area_id"].to_numpy(),
        }
    )


def evidence_column(records: Any) -> pd.Series:
    """A column of evidence objects (dicts, one per hit) for a hits frame."""
    items = records if isinstance(records, list) else list(records)
    return pd.Series(items, dtype=object)


def _evidence_json(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=_json_default, sort_keys=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, date | pd.Timestamp):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def make_findings(
    theme: Theme,
    hits: pd.DataFrame,
    *,
    bureau: str,
    period_start: date,
    period_end: date,
    run_id: str | None = None,
    notebook: str | None = None,
) -> pd.DataFrame:
    """Turn a detector's hits into findings rows.

    Parameters
    ----------
    theme
        The theme that fired.
    hits
        One row per entity with at least ``entity``, ``score``, ``reason_zh``, ``reason_en`` and
        ``evidence`` (a dict or a JSON string). Optional: ``severity``, ``kwh_at_risk``,
        ``money_at_risk``, ``station_id``, ``area_id``.
    bureau, period_start, period_end
        The bureau and the period the detector looked at.
    run_id, notebook
        The run that raised the findings and its executed notebook (evidence link).

    Returns
    -------
    pandas.DataFrame
        Columns of :data:`FINDINGS`, sorted by descending score.
    """
    if hits.empty:
        return empty_findings()
    missing = {"entity", "score", "reason_zh", "reason_en", "evidence"} - set(hits.columns)
    if missing:
        raise ValueError(f"theme {theme.id}: hits lack columns {sorted(missing)}")
    out = pd.DataFrame(index=hits.index)
    entity = hits["entity"].astype(str)
    out["finding_id"] = [finding_id(theme.id, e, period_start, period_end) for e in entity]
    out["theme_id"] = theme.id
    out["theme_version"] = theme.version
    out["entity"] = entity
    out["entity_kind"] = theme.entity_kind
    for col in ("station_id", "area_id"):
        out[col] = hits[col].astype(str) if col in hits else None
    out["period_start"] = period_start
    out["period_end"] = period_end
    out["score"] = hits["score"].astype(float)
    out["severity"] = hits.get("severity", theme.severity)
    out["deadline_days"] = theme.deadline_days  # the theme's time limit (限时稽查) for its tasks
    for col in ("kwh_at_risk", "money_at_risk"):
        out[col] = hits[col].astype(float) if col in hits else np.nan
    out["reason_zh"] = hits["reason_zh"].astype(str)
    out["reason_en"] = hits["reason_en"].astype(str)
    out["evidence"] = [_evidence_json(v) for v in hits["evidence"]]
    out["run_id"] = run_id
    out["notebook"] = notebook
    out["bureau"] = bureau
    out = out.sort_values(["score", "entity"], ascending=[False, True], kind="stable")
    return out.reset_index(drop=True)[FINDING_COLUMNS]
