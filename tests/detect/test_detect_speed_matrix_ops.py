"""The compiled matrix building blocks agree with the whole-matrix NumPy versions they
replaced (kept here as reference)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from audit_lib.detect.kernels import matrix_ops
from audit_lib.detect.kernels.rowstats import population_profile


def ref_runs(flags: np.ndarray, breaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = np.cumsum(flags, axis=1, dtype=np.int32)
    reset = np.maximum.accumulate(np.where(breaks, c, 0), axis=1)
    length = c - reset
    end = np.argmax(length, axis=1)
    return length[np.arange(len(end)), end].astype(np.int64), end


def ref_nanmean_rows(values: np.ndarray) -> np.ndarray:
    ok = ~np.isnan(values)
    n = ok.sum(axis=1)
    s = np.where(ok, values, 0.0).sum(axis=1, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / n, np.nan)


def ref_window_means(values: np.ndarray, width: int) -> np.ndarray:
    ok = ~np.isnan(values)
    zero = np.zeros((values.shape[0], 1))
    cs = np.concatenate([zero, np.cumsum(np.where(ok, values, 0.0), axis=1, dtype=np.float64)], 1)
    cn = np.concatenate([zero, np.cumsum(ok, axis=1, dtype=np.float64)], 1)
    s = cs[:, width:] - cs[:, :-width]
    n = cn[:, width:] - cn[:, :-width]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n >= width / 2, s / n, np.nan)


def ref_deseasonalise(values: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    level = ref_nanmean_rows(np.where(values > 0, values, np.nan))
    shape = values / level[:, None]
    for g in np.unique(groups):
        rows = groups == g
        sample = shape[rows][:: max(1, int(rows.sum()) // 5000)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            profile = population_profile(sample)
        shape[rows] /= profile.astype(np.float32)
    return shape.astype(np.float32), level


def ref_row_corr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    ok = ~np.isnan(x) & ~np.isnan(y)
    n = ok.sum(axis=1)
    xm = np.where(ok, x, 0.0)
    ym = np.where(ok, y, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = xm.sum(axis=1) / n
        my = ym.sum(axis=1) / n
        dx = np.where(ok, x - mx[:, None], 0.0)
        dy = np.where(ok, y - my[:, None], 0.0)
        r = (dx * dy).sum(axis=1) / np.sqrt((dx * dx).sum(axis=1) * (dy * dy).sum(axis=1))
    return np.where(n >= 10, r, np.nan)


def matrix(seed: int, n: int = 300, days: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.gamma(2.0, 5.0, size=(n, days)).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    x[rng.random(x.shape) < 0.05] = 0.0
    x[3, 50:120] = 0.0
    x[3, 80] = np.nan
    x[4] = np.nan
    x[5] = 0.0
    x[6, :150] = np.nan
    return x


@pytest.mark.parametrize("seed", [1, 2])
def test_runs_nanmean_window_means_agree(seed: int) -> None:
    x = matrix(seed)
    opened = np.random.default_rng(seed).random(x.shape) > 0.02
    flags, breaks = (x == 0) & opened, (x > 0) | ~opened
    for got, want in zip(matrix_ops.runs(flags, breaks), ref_runs(flags, breaks), strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(matrix_ops.nanmean_rows(x), ref_nanmean_rows(x), rtol=1e-12)
    part = x[:, 37:150]  # a non-contiguous view
    np.testing.assert_allclose(matrix_ops.nanmean_rows(part), ref_nanmean_rows(part), rtol=1e-12)
    for width in (7, 30, 90):
        np.testing.assert_allclose(
            matrix_ops.window_means(x, width), ref_window_means(x, width), rtol=1e-12
        )


def test_deseasonalise_agrees() -> None:
    x = matrix(3, n=600)
    groups = np.random.default_rng(3).integers(-1, 4, size=len(x))
    shape, level = matrix_ops.deseasonalise(x, groups)
    ref_shape, ref_level = ref_deseasonalise(x, groups)
    np.testing.assert_allclose(level, ref_level, rtol=1e-12)
    assert shape.dtype == np.float32
    np.testing.assert_allclose(shape, ref_shape, rtol=1e-5)


def test_row_corr_agrees() -> None:
    x = matrix(4).astype(np.float64)
    y = np.roll(x, 1, axis=0) * 0.5 - x
    y[7, :195] = np.nan  # too few common days
    want = ref_row_corr(x, y)
    got = matrix_ops.row_corr(x.astype(np.float32), y)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-6, atol=1e-9)


def ref_best_window_drop(
    shape: np.ndarray, recent: int, history: int, first_col: int
) -> tuple[np.ndarray, ...]:
    """The NumPy form used by the consumption-drop theme."""
    after = ref_window_means(shape, recent)
    before = ref_window_means(shape, history)
    t = np.arange(first_col, shape.shape[1] - recent + 1)
    a, b = after[:, t], before[:, t - history]
    with np.errstate(invalid="ignore", divide="ignore"):
        drop = 1.0 - a / b
    drop = np.where(np.isfinite(drop), drop, -np.inf)
    best = np.argmax(drop, axis=1)
    idx = np.arange(shape.shape[0])
    return drop[idx, best], t[best].astype(np.float64), b[idx, best]


@pytest.mark.parametrize(("recent", "history", "first_col"), [(30, 90, 90), (7, 28, 100)])
def test_best_window_drop_agrees(recent: int, history: int, first_col: int) -> None:
    x = matrix(5)
    x[8, 120:] = 0.0  # a drop to zero
    x[9, :] = 0.0  # zero history: the drop is not finite
    x[10, 95:140] = np.nan  # windows without enough days
    got = matrix_ops.best_window_drop(x, recent, history, first_col)
    want = ref_best_window_drop(x, recent, history, first_col)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
        np.testing.assert_allclose(g, w, rtol=1e-12)
