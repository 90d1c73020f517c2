"""The ensemble's members, their capped fits and the score combinations."""

from __future__ import annotations

import numpy as np
import pytest
from pyod.models.knn import KNN
from sklearn.metrics import roc_auc_score

from audit_lib.detect.scoring.ensemble import (
    DEFAULT_HOW,
    DEFAULT_MEMBERS,
    DEFAULT_NORMALISER,
    DEFAULT_WEIGHTS,
    MEMBER_NAMES,
    SCRATCH,
    DefaultEnsemble,
    SampledKNN,
    combine_scores,
    make_member,
)


def blobs(seed: int, n: int = 400, dims: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian clusters and 5 % far-away rows (label 1)."""
    rng = np.random.default_rng(seed)
    k = n // 20
    normal = rng.standard_normal((n - k, dims)) + rng.choice([-3.0, 3.0], size=(n - k, 1))
    far = rng.uniform(7.0, 9.0, size=(k, dims)) * rng.choice([-1, 1], size=(k, dims))
    y = np.r_[np.zeros(n - k, dtype=int), np.ones(k, dtype=int)]
    return np.vstack([normal, far]), y


@pytest.mark.parametrize("name", MEMBER_NAMES)
def test_member_scores_every_row_and_finds_far_rows(name: str) -> None:
    x, y = blobs(seed=1)
    det = make_member(name, random_state=0).fit(x)
    assert det.decision_scores_.shape == (len(x),)
    assert np.isfinite(det.decision_scores_).all()
    assert det.decision_function(x[:7]).shape == (7,)
    assert roc_auc_score(y, det.decision_scores_) >= 0.9, name


def test_member_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="KNN_k20"):
        make_member("nope")


@pytest.mark.parametrize(("n_neighbors", "method"), [(5, "largest"), (5, "mean"), (20, "largest")])
def test_sampled_knn_below_the_cap_is_pyods_knn(n_neighbors: int, method: str) -> None:
    x, _ = blobs(seed=2)
    ours = SampledKNN(n_neighbors=n_neighbors, method=method).fit(x)
    ref = KNN(n_neighbors=n_neighbors, method=method).fit(x)
    np.testing.assert_allclose(ours.decision_scores_, ref.decision_scores_)
    np.testing.assert_allclose(ours.decision_function(x[:20]), ref.decision_function(x[:20]))


def test_combine_scores_mean_weights_and_max() -> None:
    rng = np.random.default_rng(5)
    train = [rng.standard_normal(300), rng.standard_normal(300) * 4 + 2]
    new = [np.array([0.0, 3.0, -1.0]), np.array([2.0, 2.0, 14.0])]
    pairs = list(zip(train, new, strict=True))
    mean = combine_scores(pairs, "zscore")
    z = [(s - t.mean()) / t.std() for t, s in pairs]
    np.testing.assert_allclose(mean, (z[0] + z[1]) / 2)
    np.testing.assert_allclose(
        combine_scores(pairs, "zscore", weights=[1, 3]), (z[0] + 3 * z[1]) / 4
    )
    np.testing.assert_allclose(combine_scores(pairs, "zscore", how="max"), np.maximum(*z))
    with pytest.raises(ValueError, match="combination"):
        combine_scores(pairs, "zscore", how="median")


def test_default_ensemble_is_its_selected_combination_of_its_members() -> None:
    x, y = blobs(seed=6)
    det = DefaultEnsemble().fit(x)
    assert det.weights_ == DEFAULT_WEIGHTS and det.how_ == DEFAULT_HOW
    assert len(det.members_) == len(DEFAULT_MEMBERS)
    pairs = [(s, s) for s in det.member_train_scores_]
    expected = combine_scores(pairs, DEFAULT_NORMALISER, weights=DEFAULT_WEIGHTS, how=DEFAULT_HOW)
    np.testing.assert_allclose(det.decision_scores_, expected)
    assert roc_auc_score(y, det.decision_function(x)) >= 0.9
    mean = DefaultEnsemble(how="mean").fit(x)  # the same members, averaged instead
    assert not np.allclose(mean.decision_scores_, det.decision_scores_)


def test_ensemble_with_own_members_weighs_them_equally_unless_told() -> None:
    x, _ = blobs(seed=7)
    names = ("ECOD", "IForest")
    det = DefaultEnsemble(members=names, normaliser="robust").fit(x)
    assert det.weights_ is None and det.how_ == "mean"  # own members: the plain mean
    pairs = [(s, s) for s in det.member_train_scores_]
    np.testing.assert_allclose(det.decision_scores_, combine_scores(pairs, "robust"))
    tilted = DefaultEnsemble(members=names, normaliser="robust", weights=(3.0, 1.0)).fit(x)
    assert not np.allclose(tilted.decision_scores_, det.decision_scores_)
    with pytest.raises(ValueError, match="weights"):
        DefaultEnsemble(members=names, weights=(1.0, 1.0, 2.0)).fit(x)


def test_ensemble_keeps_no_per_cell_tables_and_scores_as_pyod() -> None:
    x, _ = blobs(seed=8)
    new, _ = blobs(seed=9, n=100)
    names = ("ECOD", "COPOD", "IForest")
    det = DefaultEnsemble(members=names).fit(x)
    scored = det.decision_function(new)
    for member in det.members_:
        assert not any(hasattr(member, name) for name in SCRATCH)
    for name in ("ECOD", "COPOD"):  # pyod's own member, tables kept, scores the same
        own = make_member(name).fit(x)
        assert hasattr(own, "U_l")
        ours = det.members_[names.index(name)]
        np.testing.assert_allclose(ours.decision_function(new), own.decision_function(new))
    np.testing.assert_allclose(det.decision_function(new), scored)
