"""The compiled walk of isolation forests gives scikit-learn's numbers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from audit_lib.detect.scoring.ensemble import FastIForest, forest_tables


@pytest.mark.parametrize(("max_features", "bootstrap"), [(1.0, False), (0.5, False), (3, True)])
def test_forest_tables_give_scikit_learns_scores(max_features: float, bootstrap: bool) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2_345, 6)) * [1, 2, 3, 1, 5, 0.1]  # blocks and lanes left over
    forest = IsolationForest(max_features=max_features, bootstrap=bootstrap, random_state=2).fit(x)
    depth = forest_tables(forest)[1]
    assert depth.min() >= 1 and depth.max() <= int(np.ceil(np.log2(256)))
    fast = FastIForest(max_features=max_features, bootstrap=bootstrap, random_state=2).fit(x)
    np.testing.assert_array_equal(fast.score_samples(x), forest.score_samples(x))


def test_rows_with_nan_are_scored_as_scikit_learn_does() -> None:
    rng = np.random.default_rng(8)
    x = rng.standard_normal((600, 4))
    fast = FastIForest(random_state=1).fit(x)
    new = rng.standard_normal((50, 4))
    new[3, 2] = np.nan
    np.testing.assert_array_equal(fast.score_samples(new), fast.detector_.score_samples(new))
