"""Shared column ECDFs, threaded members and the one-pass IForest give pyod's exact scores."""

from __future__ import annotations

import numpy as np
import pytest
from pyod.models.copod import COPOD
from pyod.models.ecod import ECOD
from pyod.utils.stat_models import column_ecdf

from audit_lib.detect.scoring.ecdf import column_ecdfs, shared_ecdfs


def features(seed: int = 0, n: int = 5_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    x[:, 1] = np.round(x[:, 1])  # many ties
    x[: n // 3, 2] = 0.0  # a block of equal values
    x[:5, 2] = -0.0
    x[:, 3] = np.maximum(x[:, 3], 0.0)  # one-sided, as oriented features are
    return x


def test_column_ecdfs_equal_pyods_both_tails() -> None:
    x = features()
    left, right = column_ecdfs(x)
    np.testing.assert_array_equal(left, column_ecdf(x))
    np.testing.assert_array_equal(right, column_ecdf(-x))


def test_ecod_and_copod_score_the_same_with_shared_ecdfs() -> None:
    x, new = features(1), features(2, n=700)
    plain = [m.fit(x) for m in (ECOD(), COPOD())]
    want = [(m.decision_scores_, m.decision_function(new)) for m in plain]
    with shared_ecdfs():
        shared = [m.fit(x) for m in (ECOD(), COPOD())]
        got = [(m.decision_scores_, m.decision_function(new)) for m in shared]
    for (a_train, a_new), (b_train, b_new) in zip(want, got, strict=True):
        np.testing.assert_array_equal(a_train, b_train)
        np.testing.assert_array_equal(a_new, b_new)
    import pyod.models.copod as copod_module
    import pyod.models.ecod as ecod_module

    assert ecod_module.column_ecdf is column_ecdf  # pyod's own functions are back
    assert ecod_module.skew.__module__ == ecod_module.__name__
    assert copod_module.skew.__module__ == copod_module.__name__


def test_shared_skew_computed_once_per_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    import scipy.stats

    calls: list[tuple[int, ...]] = []
    real = scipy.stats.skew

    def counted(a: np.ndarray, axis: int = 0) -> np.ndarray:
        calls.append(np.shape(a))
        return np.asarray(real(a, axis=axis))

    monkeypatch.setattr(scipy.stats, "skew", counted)
    x, y = features(4), features(5)
    with shared_ecdfs():
        ECOD().fit(x)
        COPOD().fit(x)
        assert len(calls) == 1  # the second member reused the first one's skewness
        ECOD().fit(y)
        assert len(calls) == 2  # another matrix: computed again


def test_theft_ensemble_in_threads_with_shared_ecdfs_equals_serial(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from audit_lib.detect.scoring import ensemble as ensemble_module
    from audit_lib.detect.scoring.ensemble import DefaultEnsemble
    from audit_lib.detect.scoring.theft import THEFT_MEMBERS, THEFT_NORMALISER

    x = np.abs(features(3, n=3_000))

    def fit() -> np.ndarray:
        det = DefaultEnsemble(members=THEFT_MEMBERS, normaliser=THEFT_NORMALISER)
        return np.asarray(det.fit(x).decision_scores_)

    with shared_ecdfs():
        threaded = fit()
    monkeypatch.setattr(ensemble_module.os, "cpu_count", lambda: 1)
    serial = fit()
    np.testing.assert_array_equal(threaded, serial)


def test_fast_iforest_equals_pyods_iforest() -> None:
    from pyod.models.iforest import IForest

    from audit_lib.detect.scoring.ensemble import FastIForest

    x, new = features(4, n=4_000), features(5, n=500)
    want = IForest(contamination=0.1, random_state=3).fit(x)
    got = FastIForest(contamination=0.1, random_state=3).fit(x)
    np.testing.assert_array_equal(got.decision_scores_, want.decision_scores_)
    assert got.threshold_ == want.threshold_ and got.detector_.offset_ == want.detector_.offset_
    np.testing.assert_array_equal(got.labels_, want.labels_)
    np.testing.assert_array_equal(got.decision_function(new), want.decision_function(new))
    assert got.detector_.get_params() == want.detector_.get_params()
