"""Column ECDFs for pyod's ECOD and COPOD, sorted once and shared (经验分布共享).

ECOD and COPOD both start from the empirical CDF of every column of the same rows, from the
left (``column_ecdf(X)``) and from the right (``column_ecdf(-X)``): four sorts of every
column per ensemble, ~13 s at 10⁶ rows × 15 features. :func:`column_ecdfs` gets both tails
from one sort per column with exactly pyod's values (the same ``linspace`` probabilities,
ties given the probability of their last equal, as ``ecdf_terminate_equals_inplace``), and
:func:`shared_ecdfs` lends them to pyod's members while an ensemble fits or scores.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import numba
import numpy as np


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


class _Shared:
    """The last matrix's tails, handed out while it (or its negation) is asked for again."""

    def __init__(self) -> None:
        self.key: np.ndarray | None = None
        self.tails: tuple[np.ndarray, np.ndarray] | None = None
        self.lock = threading.Lock()  # ECOD and COPOD may fit in two threads at once

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        with self.lock:
            if self.key is not None and self.tails is not None and self.key.shape == matrix.shape:
                if np.array_equal(matrix, self.key):
                    return self.tails[0].copy()
                if np.array_equal(-matrix, self.key):
                    return self.tails[1].copy()
            key = np.array(matrix, copy=True)
            self.key, self.tails = key, column_ecdfs(key)
            return self.tails[0].copy()


class _SharedSkew:
    """pyod's column skewness (``nan_to_num`` of scipy's ``skew``; ECOD and COPOD define the
    same function) of the last matrix, handed out while the same matrix is asked for again."""

    def __init__(self) -> None:
        self.key: np.ndarray | None = None
        self.axis: int | None = None
        self.value: np.ndarray | None = None
        self.lock = threading.Lock()

    def __call__(self, matrix: np.ndarray, axis: int = 0) -> np.ndarray:
        from scipy.stats import skew

        with self.lock:
            if (
                self.key is not None
                and self.value is not None
                and axis == self.axis
                and self.key.shape == np.shape(matrix)
                and np.array_equal(matrix, self.key)
            ):
                return self.value.copy()
            self.key, self.axis = np.array(matrix, copy=True), axis
            self.value = np.asarray(np.nan_to_num(skew(self.key, axis=axis)))
            return self.value.copy()


@contextlib.contextmanager
def shared_ecdfs() -> Iterator[None]:
    """Within the block, pyod's ECOD and COPOD take their column ECDFs from
    :func:`column_ecdfs`, computed once per matrix (same values as pyod's own), and their
    column skewness from one computation per matrix (scipy's, as pyod's own)."""
    import pyod.models.copod as copod_module
    import pyod.models.ecod as ecod_module

    shared, skews = _Shared(), _SharedSkew()
    saved = ecod_module.column_ecdf, copod_module.column_ecdf
    saved_skew = ecod_module.skew, copod_module.skew
    ecod_module.column_ecdf = copod_module.column_ecdf = shared
    ecod_module.skew = copod_module.skew = skews
    try:
        yield
    finally:
        ecod_module.column_ecdf, copod_module.column_ecdf = saved
        ecod_module.skew, copod_module.skew = saved_skew
