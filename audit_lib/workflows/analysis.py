"""What the analyst notebooks call: one theme family over one bureau and period, as tables.

The themes of :mod:`audit_lib.themes.catalogue` fall into the groups of :data:`THEME_GROUPS`
(the catalogue's ``business`` family split into theft & consumption and tariff & billing); each
analyst notebook (``notebooks/explore_<group>.ipynb``) runs one group with :func:`explore` and
shows what this module and :mod:`audit_lib.workflows.analysis_charts` return. Tables never carry a
customer's name, phone or id number.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from audit_lib.data.access import Mart
from audit_lib.data.balance import LOSS_CLASSES, monthly_loss
from audit_lib.data.periods import parse_period
from audit_lib.data.quality import hits_in_period, run_checks
from audit_lib.detect.context import DetectionContext
from audit_lib.detect.evaluate import (
    THEME_KINDS,
    kind_recall,
    theft_ranking,
    theme_scores,
    truth_in_period,
)
from audit_lib.detect.run import DetectionRun, detect
from audit_lib.detect.scoring.evidence import explain, explain_top
from audit_lib.errors import ConfigError, DataError
from audit_lib.themes.catalogue import CATALOGUE, get_theme

THEME_GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "theft": ("theft_suspicion", "consumption_drop", "peer_low", "zero_consumption"),
        "billing": ("tariff_misapplication", "multiplier_anomaly", "over_capacity", "arrears"),
        "line_loss": ("area_line_loss", "meter_events", "repeated_complaints"),
        "data_quality": ("data_quality",),
    }
)
"""Analyst theme groups → theme ids; together they hold every theme of the catalogue once."""

SHOWN_COLUMNS = [
    "entity", "station_id", "area_id", "score", "severity", "kwh_at_risk", "money_at_risk",
    "reason_zh", "reason_en",
]  # fmt: skip
CUSTOMER_COLUMNS = ["cons_no", "cust_class", "station_id", "area_id", "status"]
TRUTH_COLUMNS = ["entity", "entity_kind", "kind", "start", "end", "severity", "bureau", "detail"]


def group_themes(group: str) -> tuple[str, ...]:
    """Theme ids of an analyst group (``all`` = every theme of the catalogue).

    Raises
    ------
    ConfigError
        If ``group`` is not a key of :data:`THEME_GROUPS` nor ``all``.
    """
    if group == "all":
        return tuple(CATALOGUE)
    if group not in THEME_GROUPS:
        raise ConfigError(f"unknown theme group {group!r}; known: all, {', '.join(THEME_GROUPS)}")
    return THEME_GROUPS[group]


def explore(
    mart: str,
    bureau: str,
    period: str,
    group: str,
    *,
    overrides: Mapping[str, Mapping[str, float | int | str]] | None = None,
) -> DetectionRun:
    """Run the themes of ``group`` for ``bureau`` over ``period`` (nothing is written)."""
    start, end = parse_period(period)
    return detect(Mart(mart), bureau, start, end, group_themes(group), overrides=overrides)


def _context(run: DetectionRun) -> DetectionContext:
    if run.context is None:
        raise ValueError("the detection run kept no context")
    return run.context


def theme_table(
    findings: pd.DataFrame, theme_id: str, top: int = 20, *, evidence: bool = False
) -> pd.DataFrame:
    """The ``top`` highest-scoring findings of one theme, readable columns only.

    With ``evidence`` the JSON evidence is spread into ``ev_<key>`` columns (nested values stay
    JSON text).
    """
    get_theme(theme_id)  # an unknown id is an error, not an empty table
    rows = findings[findings["theme_id"] == theme_id].nlargest(top, "score")
    table = rows.reindex(columns=SHOWN_COLUMNS).reset_index(drop=True)
    if evidence and len(rows):
        spread = pd.DataFrame([json.loads(e) for e in rows["evidence"]]).add_prefix("ev_")
        spread = spread.map(lambda v: json.dumps(v) if isinstance(v, list | dict) else v)
        table = pd.concat([table, spread.reset_index(drop=True)], axis=1)
    return table


def theft_ranking_table(run: DetectionRun, top: int = 20) -> pd.DataFrame:
    """The ``top`` customers by theft score with class, area and (when flagged) the reasons.

    Every scored customer is ranked, not only the flagged top share (``flagged`` says which
    ones the theme raised).
    """
    ctx = _context(run)
    scores = run.extras.get("theft_scores")
    if scores is None or scores.empty:
        return pd.DataFrame(columns=["rank", "score", *CUSTOMER_COLUMNS, "flagged", "reason_zh"])
    ranked = scores.nlargest(top, "score").merge(ctx.customers[CUSTOMER_COLUMNS], on="cons_no")
    flagged = run.findings[run.findings["theme_id"] == "theft_suspicion"].set_index("entity")
    ranked["flagged"] = ranked["cons_no"].isin(flagged.index)
    for col in ("reason_zh", "reason_en", "money_at_risk"):
        ranked[col] = ranked["cons_no"].map(flagged[col]) if col in flagged else np.nan
    return ranked[["rank", "score", *CUSTOMER_COLUMNS, "flagged", "reason_zh", "reason_en",
                   "money_at_risk"]]  # fmt: skip


def pick_customer(run: DetectionRun, cons_no: str = "") -> str:
    """``cons_no``, or when empty the customer with the highest theft score (else the first
    finding's customer).

    Raises
    ------
    DataError
        If ``cons_no`` is not a customer of the run's bureau, or there is nobody to pick.
    """
    ctx = _context(run)
    known = set(ctx.customers["cons_no"].astype(str))
    if cons_no:
        if cons_no not in known:
            raise DataError(f"customer {cons_no!r} is not in bureau {ctx.bureau}", field="cons_no")
        return cons_no
    scores = run.extras.get("theft_scores")
    if scores is not None and len(scores):
        return str(scores.nlargest(1, "score")["cons_no"].iloc[0])
    people = run.findings[run.findings["entity"].isin(known)]
    if people.empty:
        raise DataError("no customer to show: pass cons_no", field="cons_no")
    return str(people.nlargest(1, "score")["entity"].iloc[0])


def customer_series(run: DetectionRun, cons_no: str) -> pd.Series:
    """Daily kWh of one customer over the run's matrix (history included), NaN when closed,
    from its first to its last read day."""
    ctx = _context(run)
    row = pd.Index(ctx.customers["cons_no"].astype(str)).get_loc(cons_no)
    values = np.where(ctx.open_mask[row], ctx.matrix.values[row], np.nan)
    series = pd.Series(values, index=ctx.matrix.dates, name=cons_no, dtype=np.float64)
    return series.loc[series.first_valid_index() : series.last_valid_index()]


def customer_evidence(run: DetectionRun, cons_no: str = "") -> pd.DataFrame:
    """The statsmodels evidence (:func:`~audit_lib.detect.scoring.evidence.explain`) of one customer:
    change day, levels before and after, t and p of the step, seasonal strength."""
    who = pick_customer(run, cons_no)
    return pd.DataFrame([{"cons_no": who, **explain(customer_series(run, who))}])


def top_evidence(run: DetectionRun, k: int = 10) -> pd.DataFrame:
    """:func:`customer_evidence` for the ``k`` highest theft scores (evidence for the few)."""
    ctx = _context(run)
    scores = run.extras.get("theft_scores")
    if scores is None or scores.empty:
        return pd.DataFrame(columns=["cons_no", "change_day", "change_pct", "p_value"])
    values = np.where(ctx.open_mask, ctx.matrix.values, np.nan)
    return explain_top(values, ctx.customers["cons_no"].to_numpy(), scores, k=k,
                       dates=ctx.matrix.dates)  # fmt: skip


def loss_limits(run: DetectionRun) -> Mapping[str, float | int | str]:
    """The line-loss classes' limits of the run (its ``area_line_loss`` parameters: the
    bureau's from ``theme_params`` where given, else the catalogue's), as fractions."""
    return _context(run).theme("area_line_loss").params


def area_loss_table(run: DetectionRun) -> pd.DataFrame:
    """Loss rate and class per station area and month (台区月度线损) by the run's
    :func:`loss_limits`, worst areas first."""
    table = monthly_loss(_context(run), loss_limits(run))
    table["class_en"] = table["loss_class"].map({k: v[1] for k, v in LOSS_CLASSES.items()})
    worst = table.groupby("area_id")["loss_rate"].transform(lambda s: s.abs().max())
    return (
        table.assign(_worst=worst)
        .sort_values(["_worst", "area_id", "month"], ascending=[False, True, True])
        .drop(columns="_worst")
        .reset_index(drop=True)
    )


def area_months(table: pd.DataFrame) -> pd.DataFrame:
    """Loss rate in % per area (rows, worst first) and month (columns), from
    :func:`area_loss_table`; NaN where the month was not computable."""
    rate = table["loss_rate"].where(table["loss_class"] != "not_computable") * 100
    wide = table.assign(rate=rate.round(2)).pivot(index="area_id", columns="month", values="rate")
    return wide.loc[table["area_id"].drop_duplicates()]


def loss_classes(table: pd.DataFrame) -> pd.DataFrame:
    """Areas per loss class and month (from :func:`area_loss_table`)."""
    counts = table.pivot_table(index="month", columns="loss_class", values="area_id",
                               aggfunc="count")  # fmt: skip
    counts = counts.reindex(columns=list(LOSS_CLASSES)).fillna(0).astype(int)
    counts.columns = [f"{LOSS_CLASSES[c][0]} {LOSS_CLASSES[c][1]}" for c in counts.columns]
    return counts


def loss_suspects(findings: pd.DataFrame) -> pd.DataFrame:
    """Localisation (定位): per flagged area, the customers whose consumption moves against its
    loss rate, from the line-loss findings' evidence."""
    rows = []
    for area, ev in zip(
        findings.loc[findings["theme_id"] == "area_line_loss", "entity"],
        findings.loc[findings["theme_id"] == "area_line_loss", "evidence"],
        strict=True,
    ):
        data = json.loads(ev)
        for s in data.get("suspects", []):
            rows.append((area, data.get("worst_loss_rate"), s["cons_no"], s["corr"]))
    return pd.DataFrame(rows, columns=["area_id", "worst_loss_rate", "cons_no", "corr"])


def period_dq_hits(mart: str, bureau: str, period: str) -> pd.DataFrame:
    """Every data-quality check's hits for ``bureau`` that concern ``period``, as the theme
    keeps them (:func:`audit_lib.data.quality.hits_in_period`)."""
    return hits_in_period(run_checks(Mart(mart), bureau), *parse_period(period))


def dq_examples(hits: pd.DataFrame, per_check: int = 5) -> pd.DataFrame:
    """A few hits of each check, to read what they look like."""
    return hits.groupby("check", sort=True).head(per_check).reset_index(drop=True)


def load_truth(mart: str, truth: str, bureau: str, period: str) -> pd.DataFrame:
    """The truth rows of ``bureau`` overlapping ``period`` (``truth`` empty: ``truth.parquet``
    beside the mart); an empty table when there is no truth file."""
    path = Path(truth) if truth else Path(mart).parent / "truth.parquet"
    if not path.is_file():
        return pd.DataFrame(columns=TRUTH_COLUMNS)
    start, end = parse_period(period)
    return truth_in_period(pd.read_parquet(path), bureau, start, end).reset_index(drop=True)


def truth_counts(truth: pd.DataFrame) -> pd.DataFrame:
    """Injected (or confirmed) cases per kind, and the themes meant to find each."""
    finders: dict[str, list[str]] = {}
    for theme_id, kinds in THEME_KINDS.items():
        for kind in kinds:
            finders.setdefault(kind, []).append(theme_id)
    counts = truth.groupby("kind")["entity"].nunique().rename("entities").reset_index()
    counts["themes"] = counts["kind"].map(lambda k: ", ".join(finders.get(k, [])) or "—")
    return counts


def theme_quality(run: DetectionRun, truth: pd.DataFrame) -> pd.DataFrame:
    """Precision, recall and F1 of every theme that was run and targets a truth kind (empty
    without a truth table)."""
    if truth.empty:
        return pd.DataFrame(columns=["theme", "name_zh", "findings", "injected", "hits",
                                     "precision", "recall", "f1"])  # fmt: skip
    scores = theme_scores(run.findings, truth)
    return scores[scores["theme"].isin(list(run.hits))].reset_index(drop=True)


def kind_quality(run: DetectionRun, truth: pd.DataFrame) -> pd.DataFrame:
    """Recall of every theme that was run on each truth kind it targets (a theme can cover
    several: data quality finds missing, negative, absurd, … readings); empty without a truth
    table."""
    if truth.empty:
        return pd.DataFrame(columns=["theme", "kind", "injected", "hits", "recall"])
    recall = kind_recall(run.findings, truth)
    return recall[recall["theme"].isin(list(run.hits))].reset_index(drop=True)


def theft_quality(run: DetectionRun, truth: pd.DataFrame) -> pd.DataFrame:
    """Ranking quality of the theft score (ROC-AUC, AP, P@k, MAP@k) as a one-row table."""
    scores = run.extras.get("theft_scores")
    if truth.empty or scores is None or scores.empty:
        return pd.DataFrame()
    bureau = _context(run).bureau
    return pd.DataFrame([theft_ranking(scores.assign(bureau=bureau), truth)])
