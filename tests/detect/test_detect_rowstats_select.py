"""The compiled order statistics of :mod:`audit_lib.detect.kernels.rowstats` against numpy's sort."""

from __future__ import annotations

import numpy as np
import pytest

from audit_lib.detect.kernels.rowstats import _largest, _median, _select


def _samples(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for t in range(400):
        n = int(rng.integers(1, 400))
        if t % 3 == 0:  # many ties (zero days, rounded meter readings)
            a = rng.integers(0, int(rng.integers(1, 6)), n)
        elif t % 3 == 1:
            a = rng.standard_normal(n)
        else:  # already ordered, a quickselect's bad case
            a = np.sort(rng.exponential(size=n))[:: 1 if t % 2 else -1]
        out.append(a.astype(np.float32))
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_select_is_the_sorted_kth_and_partitions(seed: int) -> None:
    rng = np.random.default_rng(seed + 10)
    for a in _samples(seed):
        n = len(a)
        k = int(rng.integers(0, n))
        b = a.copy()
        got = _select(b, n, k)
        assert got == np.sort(a)[k]
        assert (b[:k] <= got).all()
        np.testing.assert_array_equal(np.sort(b), np.sort(a))  # a reordering, no value lost


@pytest.mark.parametrize("seed", [2, 3])
def test_median_and_largest_match_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed + 10)
    for a in _samples(seed):
        n = len(a)
        assert np.float32(_median(a.copy(), n)) == np.float32(np.median(a.astype(np.float64)))
        m = int(rng.integers(1, n + 1))
        b = a.copy()
        assert _largest(b, n, m) == np.sort(a)[n - m]
        np.testing.assert_array_equal(b, a)  # not reordered
