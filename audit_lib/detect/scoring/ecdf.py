"""Column ECDFs for pyod's ECOD and COPOD, sorted once and shared (经验分布共享).

ECOD and COPOD both start from the empirical CDF of every column of the same rows, from the
left (``column_ecdf(X)``) and from the right (``column_ecdf(-X)``): four sorts of every
column per ensemble, ~13 s at 10⁶ rows × 15 features. :func:`column_ecdfs` gets both tails
from one sort per column with exactly pyod's values (the same ``linspace`` probabilities,
ties given the probability of their last equal, as ``ecdf_terminate_equals_inplace``).
:class:`SharedECOD` and :class:`SharedCOPOD` are pyod's ECOD and COPOD taking their ECDFs
and column skewness from a :class:`ColumnTails` object handed to them explicitly: the
ensemble that fits (or scores) them owns one, so the pair sorts each column once between
them. Nothing of pyod's is patched: two ensembles may fit at once in different threads.
Fitting the pair on 10⁶ × 16 rows: 3.8 s against pyod's 13.0 s, the same scores
(``benchmarks/bench_library_paths.py``; the tests check them equal to pyod's).
"""

from __future__ import annotations

import threading
from typing import Any

import numba
import numpy as np
from pyod.models.copod import COPOD
from pyod.models.ecod import ECOD
from scipy.stats import skew
from sklearn.utils.validation import check_array


def column_ecdfs(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pyod's ``column_ecdf(matrix)`` and ``column_ecdf(-matrix)``, one sort per column.

    Parameters
    ----------
    matrix
        Rows × features, finite values.

    Returns
    -------
    left, right : ndarray
        Per cell, the share of the column's values ≤ it (left) and ≥ it (right), on pyod's
        grid ``linspace(1/n, 1, n)``.
    """
    n, d = matrix.shape
    grid = np.linspace(1.0 / n, 1.0, n)
    left = np.empty((n, d))
    right = np.empty((n, d))
    for j in range(d):
        col = np.ascontiguousarray(matrix[:, j])
        order = np.argsort(col, kind="stable")
        _fill_tails(col[order], order, grid, left[:, j], right[:, j])
    return left, right


@numba.njit(cache=True, nogil=True)
def _fill_tails(
    ordered: np.ndarray, order: np.ndarray, grid: np.ndarray, left: np.ndarray, right: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Left tail: grid at the last of each run of equal values; right tail: grid at
    ``n - 1 -`` the first of the run (the last of the run once the column is negated)."""
    n = ordered.size
    lo = 0
    while lo < n:
        hi = lo
        while hi + 1 < n and ordered[hi + 1] == ordered[lo]:
            hi += 1
        p_left, p_right = grid[hi], grid[n - 1 - lo]
        for k in range(lo, hi + 1):
            left[order[k]] = p_left
            right[order[k]] = p_right
        lo = hi + 1


def _same(key: np.ndarray | None, matrix: np.ndarray) -> bool:
    return key is not None and key.shape == matrix.shape and bool(np.array_equal(key, matrix))


class ColumnTails:
    """Both column ECDFs (:func:`column_ecdfs`) and the column skewness of the last matrix
    asked for, computed once and handed out again while the same matrix is asked for.

    One object serves the members of one ensemble fit, or of one scoring, and is passed to
    them explicitly (``fit(X, tails=...)``, ``decision_function(X, tails=...)``); it holds
    the matrix it was asked for last (not a copy: the matrix must not change while the
    object is in use). ECOD and COPOD may ask from two threads at once: the first computes,
    the other waits and takes the result. The arrays handed out are shared: read-only use.
    """

    def __init__(self) -> None:
        self._ecdf_lock = threading.Lock()
        self._ecdf_key: np.ndarray | None = None
        self._ecdfs: tuple[np.ndarray, np.ndarray] | None = None
        self._skew_lock = threading.Lock()
        self._skew_key: np.ndarray | None = None
        self._skew: np.ndarray | None = None

    def ecdfs(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(column_ecdf(matrix), column_ecdf(-matrix))`` in pyod's terms."""
        with self._ecdf_lock:
            if self._ecdfs is None or not _same(self._ecdf_key, matrix):
                self._ecdf_key, self._ecdfs = matrix, column_ecdfs(matrix)
            return self._ecdfs

    def skewness(self, matrix: np.ndarray) -> np.ndarray:
        """Each column's skewness as ECOD's and COPOD's ``skew(matrix, axis=0)`` (the same
        function in both modules: ``nan_to_num`` of scipy's ``skew``)."""
        with self._skew_lock:
            if self._skew is None or not _same(self._skew_key, matrix):
                self._skew_key = matrix
                self._skew = np.asarray(np.nan_to_num(skew(matrix, axis=0)))
            return self._skew


def tail_scores(det: Any, X: np.ndarray, tails: ColumnTails | None, *, copula: bool) -> np.ndarray:
    """pyod's ``ECOD.decision_function`` (``copula=False``) or ``COPOD.decision_function``
    (``copula=True``) on one thread (``n_jobs=1``), the ECDFs and skewness from ``tails``
    (a fresh :class:`ColumnTails` when ``None``): the same operations in the same order,
    and the same tables kept on ``det`` (``U_l``, ``U_r``, ``U_skew``, ``O``)."""
    tails = tails if tails is not None else ColumnTails()
    original_size = None
    if hasattr(det, "X_train"):
        original_size = X.shape[0]
        X = np.concatenate((det.X_train, X), axis=0)
    left, right = tails.ecdfs(X)
    det.U_l = -1 * np.log(left)
    det.U_r = -1 * np.log(right)
    skewness = np.sign(tails.skewness(X))
    det.U_skew = det.U_l * -1 * np.sign(skewness - 1) + det.U_r * np.sign(skewness + 1)
    if copula:
        det.O = np.maximum(det.U_skew, np.add(det.U_l, det.U_r) / 2)
    else:
        det.O = np.maximum(det.U_l, det.U_r)
        det.O = np.maximum(det.U_skew, det.O)
    scores = det.O.sum(axis=1)
    return np.asarray(scores if original_size is None else scores[-original_size:]).ravel()


class _SharedTails:
    """``fit`` and ``decision_function`` of :class:`SharedECOD` and :class:`SharedCOPOD`:
    pyod's, with the column ECDFs and skewness from an optional :class:`ColumnTails`."""

    copula: bool = False  # COPOD's combination of the tails, else ECOD's

    def fit(
        self, X: np.ndarray, y: np.ndarray | None = None, *, tails: ColumnTails | None = None
    ) -> Any:
        """pyod's ``fit``: ``decision_scores_`` of ``X``, then ``X`` kept as ``X_train``."""
        det: Any = self
        X = check_array(X)
        det._set_n_classes(y)
        det.decision_scores_ = self.decision_function(X, tails=tails)
        det.X_train = X
        det._process_decision_scores()
        return self

    def decision_function(self, X: np.ndarray, *, tails: ColumnTails | None = None) -> np.ndarray:
        """pyod's ``decision_function`` (the training rows and ``X`` ranked together); with
        ``n_jobs != 1`` pyod's own parallel path."""
        det: Any = self
        if det.n_jobs != 1:
            return np.asarray(super().decision_function(X))  # type: ignore[misc]
        return tail_scores(self, X, tails, copula=self.copula)


class SharedECOD(_SharedTails, ECOD):
    """pyod's ECOD, its column ECDFs and skewness taken from a :class:`ColumnTails`.

    ``fit`` and ``decision_function`` take an optional ``tails``: the object the other
    members of the same fit (or scoring) use. Without it each call sorts once per column
    for itself (pyod sorts twice). The numbers are pyod's.
    """


class SharedCOPOD(_SharedTails, COPOD):
    """pyod's COPOD, its column ECDFs and skewness taken from a :class:`ColumnTails` (see
    :class:`SharedECOD`)."""

    copula = True
