"""The zero-consumption theme's fused kernel and threaded chunks against their NumPy forms."""

from __future__ import annotations

import numpy as np
import pytest

from audit_lib.detect.kernels import matrix_ops
from audit_lib.detect.kernels.matrix_ops import by_chunks, nanmean_rows, runs
from audit_lib.detect.themes import zero_consumption


def test_zero_runs_kernel_equals_runs_and_means() -> None:
    rng = np.random.default_rng(5)
    x = rng.gamma(2.0, 3.0, size=(400, 120)).astype(np.float32)
    x[rng.random(x.shape) < 0.3] = 0.0
    x[rng.random(x.shape) < 0.05] = np.nan
    x[:20, 30:90] = 0.0  # long runs
    x[20:25] = 0.0  # never positive
    opened = rng.random(x.shape) < 0.97
    opened[25:30, :50] = False
    cols = np.zeros(120, dtype=bool)
    cols[40:110] = True
    want_len, want_end = runs(((x == 0) & opened)[:, cols], ((x > 0) | ~opened)[:, cols])
    want_level = nanmean_rows(np.where(opened & (x > 0), x, np.nan))
    length, end, level = zero_consumption._zero_runs(x, opened, 40, 110)
    np.testing.assert_array_equal(length, want_len)
    np.testing.assert_array_equal(end, want_end)
    np.testing.assert_array_equal(level, want_level)
    assert length.max() >= 50 and np.isnan(level[20:25]).all()


def test_by_threads_equals_by_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matrix_ops, "CHUNK_ROWS", 7)
    x = np.random.default_rng(1).random((50, 4))

    def fn(s: slice) -> tuple[np.ndarray, ...]:
        return x[s].sum(axis=1), x[s].argmax(axis=1)

    want = by_chunks(50, fn, chunk=7)
    got = matrix_ops.by_threads(50, fn)
    for a, b in zip(want, got, strict=True):
        np.testing.assert_array_equal(a, b)
