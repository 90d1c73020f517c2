"""Ranking and classification metrics for detectors.

MAP@N follows Zheng et al. (2018), *Wide and Deep Convolutional Neural Networks for
Electricity-Theft Detection to Secure Smart Grids*, IEEE Trans. Ind. Informatics 14(4), on
the SGCC data: rank customers by score, let ``k_1 < … < k_r`` be the positions (1-based) of
the true thieves among the top ``N``; then ``MAP@N = (1/r) Σ_i P@k_i`` with
``P@k_i = i / k_i`` (0 when the top ``N`` holds no thief).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from audit_lib.errors import DataError


def _check(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(int)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise DataError(f"labels {y.shape} and scores {s.shape} must be 1-D of equal length")
    if not np.isin(y, (0, 1)).all():
        raise DataError("labels must be 0 or 1", field="y_true")
    return y, np.where(np.isnan(s), -np.inf, s)


def ranked_labels(y_true: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Labels sorted by descending score (stable: ties keep input order)."""
    y, s = _check(y_true, scores)
    return y[np.argsort(-s, kind="stable")]


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (NaN scores rank last)."""
    y, s = _check(y_true, scores)
    s = np.where(np.isinf(s), np.min(s[np.isfinite(s)], initial=0.0) - 1.0, s)
    return float(roc_auc_score(y, s))


def average_precision(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Average precision (area under the precision-recall curve, step-wise)."""
    y, s = _check(y_true, scores)
    s = np.where(np.isinf(s), np.min(s[np.isfinite(s)], initial=0.0) - 1.0, s)
    return float(average_precision_score(y, s))


def precision_at_k(y_true: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Share of true positives among the ``k`` highest scores."""
    top = ranked_labels(y_true, scores)[:k]
    return float(top.mean()) if len(top) else 0.0


def map_at_k(y_true: np.ndarray, scores: np.ndarray, k: int) -> float:
    """MAP@k as defined by Zheng et al. (2018) (see the module docstring)."""
    top = ranked_labels(y_true, scores)[:k]
    hits = np.flatnonzero(top) + 1
    if len(hits) == 0:
        return 0.0
    return float(np.mean(np.arange(1, len(hits) + 1) / hits))


def ranking_report(y_true: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """ROC-AUC, average precision, precision@100 and MAP@100 / MAP@200 in one dict."""
    return {
        "roc_auc": roc_auc(y_true, scores),
        "average_precision": average_precision(y_true, scores),
        "precision_at_100": precision_at_k(y_true, scores, 100),
        "map_at_100": map_at_k(y_true, scores, 100),
        "map_at_200": map_at_k(y_true, scores, 200),
    }
