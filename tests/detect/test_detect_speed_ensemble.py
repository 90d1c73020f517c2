"""The block-wise INNE scorer and the cached HBOS kernel give pyod's scores."""

from __future__ import annotations

import numpy as np
import pytest
from pyod.models.hbos import HBOS
from pyod.models.inne import INNE

from audit_lib.detect.scoring.ensemble import CachedHBOS, FastINNE, legacy_choice, make_member


@pytest.mark.parametrize(("n", "dims", "seed"), [(3000, 16, 0), (500, 3, 1), (9, 2, 2)])
def test_fast_inne_matches_pyod(n: int, dims: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dims))
    x[: n // 20] *= 6.0  # some outliers
    x[-3:] = x[0]  # repeated rows
    fast = FastINNE(random_state=seed).fit(x)
    ref = INNE(random_state=seed).fit(x)
    np.testing.assert_allclose(fast.decision_scores_, ref.decision_scores_, rtol=1e-12)
    new = rng.standard_normal((200, dims)) * 2.0
    np.testing.assert_allclose(fast.decision_function(new), ref.decision_function(new), rtol=1e-12)
    assert isinstance(make_member("INNE"), FastINNE)


@pytest.mark.parametrize("n", [1, 2, 8, 9, 100, 65_537, 200_003])
@pytest.mark.parametrize("size", [0, 1, 8])
def test_legacy_choice_matches_random_state(n: int, size: int) -> None:
    size = min(size, n)
    for seed in (0, 1, 12345, 2**31 - 2):
        want = np.random.RandomState(seed).choice(n, size, replace=False)
        got = legacy_choice(seed, n, size)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_fast_inne_centres_are_pyods() -> None:
    x = np.random.default_rng(5).standard_normal((5000, 4))
    fast, ref = FastINNE(random_state=3).fit(x), INNE(random_state=3).fit(x)
    np.testing.assert_array_equal(fast._centroids, ref._centroids)
    np.testing.assert_array_equal(fast._centroids_radius, ref._centroids_radius)
    np.testing.assert_array_equal(fast._ratio, ref._ratio)


@pytest.mark.parametrize("n_bins", [10, 3, "auto"])
def test_cached_hbos_scores_as_pyods(n_bins: int | str) -> None:
    rng = np.random.default_rng(6)
    x = np.maximum(rng.standard_normal((4000, 5)), 0.0)  # one-sided, as oriented features
    x[:, 1] = rng.standard_t(2, 4000)  # heavy tails
    new = rng.standard_normal((300, 5)) * 3.0  # rows beyond the bins too
    ours, ref = CachedHBOS(n_bins=n_bins).fit(x), HBOS(n_bins=n_bins).fit(x)
    np.testing.assert_array_equal(ours.decision_scores_, ref.decision_scores_)
    assert ours.threshold_ == ref.threshold_
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_array_equal(ours.decision_function(new), ref.decision_function(new))
    for got, want in zip(ours.hist_, ref.hist_, strict=True):
        np.testing.assert_array_equal(got, want)
    assert isinstance(make_member("HBOS"), CachedHBOS)
