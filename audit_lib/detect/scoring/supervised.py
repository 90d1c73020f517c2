"""Learning from outcomes: a supervised ranker on the shape features, blended with the
unsupervised theft score, and an honest evaluation of the gain.

Confirmed audit outcomes (or a labelled set such as SGCC) are labels. The ranker is a
scikit-learn gradient-boosting classifier on the same features as the theft score; its
probability is rank-averaged with the unsupervised score. :func:`evaluate_blend` measures
the gain only on rows the ranker did not train on: customer-disjoint folds
(``GroupKFold`` on the customer key, so all rows of one customer fall in one fold) or a
time-based split (train on periods before ``cutoff``, test on the rest).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedGroupKFold

from audit_lib.detect.scoring.metrics import ranking_report
from audit_lib.detect.scoring.theft import rank01
from audit_lib.errors import DataError


def make_ranker(random_state: int = 0) -> HistGradientBoostingClassifier:
    """The supervised ranker: gradient boosting with balanced classes."""
    return HistGradientBoostingClassifier(
        max_iter=200,
        learning_rate=0.06,
        max_leaf_nodes=15,
        min_samples_leaf=20,
        l2_regularization=1.0,
        class_weight="balanced",
        random_state=random_state,
    )


def blend_scores(supervised: np.ndarray, unsupervised: np.ndarray, weight: float) -> np.ndarray:
    """Rank average: ``weight`` on the supervised probability, the rest on the unsupervised."""
    return np.asarray(weight * rank01(supervised) + (1.0 - weight) * rank01(unsupervised))


def _check(features: np.ndarray, labels: np.ndarray, unsup: np.ndarray) -> None:
    if not len(features) == len(labels) == len(unsup):
        raise DataError(
            f"{len(features)} feature rows, {len(labels)} labels, {len(unsup)} scores",
            field="labels",
        )
    if np.unique(labels).size < 2:
        raise DataError("labels hold one class only; nothing to learn", field="labels")


def evaluate_blend(
    features: np.ndarray,
    labels: np.ndarray,
    unsup: np.ndarray,
    *,
    customers: np.ndarray | None = None,
    periods: np.ndarray | None = None,
    cutoff: Any = None,
    n_splits: int = 5,
    weight: float = 0.5,
    random_state: int = 0,
) -> dict[str, dict[str, float]]:
    """Out-of-sample metrics of the unsupervised score, the ranker and their blend.

    Parameters
    ----------
    features, labels, unsup
        One row per customer (or customer × period): features, 0/1 outcome, unsupervised
        score.
    customers
        Customer key per row; folds never split a customer (default: each row its own).
    periods, cutoff
        When both are given, a time-based split instead: train on ``periods < cutoff``,
        evaluate on the rest (customers seen in training are dropped from the test rows).
    n_splits, weight, random_state
        Folds, blend weight on the ranker, seed.

    Returns
    -------
    dict
        ``{"unsupervised": …, "supervised": …, "blend": …}``, each a
        :func:`~audit_lib.detect.scoring.metrics.ranking_report` on held-out rows only.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels).astype(int)
    u = np.asarray(unsup, dtype=np.float64)
    _check(x, y, u)
    keys = np.arange(len(y)) if customers is None else np.asarray(customers)
    if periods is not None and cutoff is not None:
        per = np.asarray(periods)
        train = per < cutoff
        test = ~train & ~np.isin(keys, keys[train])
        if np.unique(y[train]).size < 2 or np.unique(y[test]).size < 2:
            raise DataError("the time split leaves one class on a side", field="periods")
        model = make_ranker(random_state).fit(x[train], y[train])
        prob = model.predict_proba(x[test])[:, 1]
        y_eval, u_eval = y[test], u[test]
    else:
        prob = np.zeros(len(y))
        folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
        for tr, te in folds.split(x, y, groups=keys):
            prob[te] = make_ranker(random_state).fit(x[tr], y[tr]).predict_proba(x[te])[:, 1]
        y_eval, u_eval = y, u
    return {
        "unsupervised": ranking_report(y_eval, u_eval),
        "supervised": ranking_report(y_eval, prob),
        "blend": ranking_report(y_eval, blend_scores(prob, u_eval, weight)),
    }
