"""Detection quality against a truth table: per-theme precision / recall / F1, and ranking
metrics of the theft score (ROC-AUC, average precision, precision@k, MAP@k as in Zheng et
al. 2018 on the SGCC data)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import pandas as pd

from audit_lib.data.schema import DQ_KINDS, LEGIT_KINDS, THEFT_KINDS
from audit_lib.detect.scoring.metrics import ranking_report
from audit_lib.themes.catalogue import CATALOGUE

THEME_KINDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "zero_consumption": ("zero_while_active",),
        "theft_suspicion": THEFT_KINDS,
        "tariff_misapplication": ("tariff_invalid_for_class", "bill_amount_mismatch"),
        "multiplier_anomaly": ("wrong_multiplier", "multiplier_not_updated"),
        "over_capacity": ("over_capacity",),
        "arrears": ("arrears",),
        "repeated_complaints": ("repeated_complaints",),
        "data_quality": DQ_KINDS,
    }
)
"""Which kinds of the truth table (:data:`audit_lib.data.schema.TRUTH_KINDS`) each theme is
meant to find; themes absent here are not scored against the truth."""


def truth_in_period(truth: pd.DataFrame, bureau: str, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Truth rows of ``bureau`` whose window overlaps ``start``..``end``."""
    t = truth[truth["bureau"] == bureau]
    s = pd.to_datetime(t["start"]).dt.date
    e = pd.to_datetime(t["end"]).dt.date
    return t[(s <= end) & (e >= start)]


def theme_scores(findings: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Precision, recall and F1 of every theme that targets injected kinds.

    Parameters
    ----------
    findings
        Findings of one or more bureaus.
    truth
        The truth rows that apply (same bureaus and period).
    """
    rows = []
    for theme in CATALOGUE.values():
        kinds = THEME_KINDS.get(theme.id, ())
        if not kinds:
            continue
        got = findings.loc[findings["theme_id"] == theme.id, ["bureau", "entity"]]
        want = truth.loc[truth["kind"].isin(kinds), ["bureau", "entity"]]
        got_set = set(map(tuple, got.to_numpy()))
        want_set = set(map(tuple, want.drop_duplicates().to_numpy()))
        tp = len(got_set & want_set)
        p = tp / len(got_set) if got_set else float("nan")
        r = tp / len(want_set) if want_set else float("nan")
        f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
        rows.append((theme.id, theme.name_zh, len(got_set), len(want_set), tp, p, r, f1))
    return pd.DataFrame(
        rows,
        columns=["theme", "name_zh", "findings", "injected", "hits", "precision", "recall", "f1"],
    )


def kind_recall(findings: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Recall of every theme on each injected kind it targets (a theme can cover several,
    e.g. data quality: missing, negative, absurd, … readings).

    Parameters are as :func:`theme_scores`'s. Returns one row per theme and kind present in
    ``truth``: ``theme``, ``kind``, ``injected``, ``hits`` and ``recall``.
    """
    rows = []
    for theme in CATALOGUE.values():
        got = findings.loc[findings["theme_id"] == theme.id, ["bureau", "entity"]]
        got_set = set(map(tuple, got.to_numpy()))
        for kind in THEME_KINDS.get(theme.id, ()):
            want = truth.loc[truth["kind"] == kind, ["bureau", "entity"]].drop_duplicates()
            if want.empty:
                continue
            hits = sum(1 for key in map(tuple, want.to_numpy()) if key in got_set)
            rows.append((theme.id, kind, len(want), hits, hits / len(want)))
    return pd.DataFrame(rows, columns=["theme", "kind", "injected", "hits", "recall"])


def theft_ranking(scores: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """Ranking quality of the theft score over every scored customer.

    ``scores`` has ``bureau``, ``cons_no`` and ``score``; a customer is positive when the
    truth holds a theft kind for it. Also counts legitimate drops (vacancy, move) in the top
    100.
    """
    theft = set(
        map(tuple, truth.loc[truth["kind"].isin(THEFT_KINDS), ["bureau", "entity"]].to_numpy())
    )
    legit = set(
        map(tuple, truth.loc[truth["kind"].isin(LEGIT_KINDS), ["bureau", "entity"]].to_numpy())
    )
    order = scores.sort_values("score", ascending=False, kind="stable")
    keys = list(zip(order["bureau"], order["cons_no"], strict=True))
    y = np.array([k in theft for k in keys], dtype=int)
    legit_top = sum(1 for k in keys[:100] if k in legit and k not in theft)
    base: dict[str, float] = {"customers": len(y), "thieves": int(y.sum())}
    if y.min() == y.max():
        return base
    report = ranking_report(y, order["score"].to_numpy(dtype=float))
    return {**base, **report, "legit_in_top_100": legit_top}
