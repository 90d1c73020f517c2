"""One contract test over every detector of the workbench (STYLE.md: the detector contract)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from detect_data import make_daily
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from audit_lib.detect.scoring.ensemble import DefaultEnsemble
from audit_lib.detect.scoring.theft import TheftDetector

DETECTORS: dict[str, Any] = {"ensemble": DefaultEnsemble, "theft": TheftDetector}
"""Every detector class of the workbench (pyod's contract), by name."""


def make_detector(name: str, **kwargs: Any) -> Any:
    """A detector of :data:`DETECTORS` with ``kwargs``."""
    return DETECTORS[name](**kwargs)


AUC_FLOOR = {"tabular": 0.95, "daily_matrix": 0.85}


def planted(kind: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Data with planted anomalies for a detector's input kind."""
    rng = np.random.default_rng(seed)
    if kind == "tabular":
        normal = rng.standard_normal((380, 6))
        anomalies = rng.uniform(3.5, 6.0, size=(20, 6)) * rng.choice([-1, 1], size=(20, 6))
        x = np.vstack([normal, anomalies])
        y = np.r_[np.zeros(380, dtype=int), np.ones(20, dtype=int)]
        order = rng.permutation(len(y))
        return x[order], y[order]
    if kind == "daily_matrix":
        return make_daily(rng, n=60, days=150, n_thieves=6)
    raise AssertionError(f"no planted data for input kind {kind!r}")


@pytest.fixture(scope="module", params=sorted(DETECTORS))
def fitted(request: pytest.FixtureRequest) -> dict[str, Any]:
    name = request.param
    det = make_detector(name, random_state=0)
    x, y = planted(det.input_kind, seed=7)
    returned = det.fit(x)
    return {"name": name, "det": det, "returned": returned, "x": x, "y": y}


def test_detector_fit_returns_self(fitted: dict[str, Any]) -> None:
    assert fitted["returned"] is fitted["det"]


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_detector_predict_before_fit_raises(name: str) -> None:
    det = make_detector(name)
    x, _ = planted(det.input_kind, seed=1)
    with pytest.raises(NotFittedError):
        det.decision_function(x)
    with pytest.raises(NotFittedError):
        det.predict(x)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_detector_init_only_stores_params(name: str) -> None:
    det = make_detector(name, random_state=3)
    twin = clone(det)
    assert twin.get_params() == det.get_params()
    assert not [a for a in vars(det) if a.endswith("_") and not a.startswith("_")]


def test_detector_fitted_shapes_and_labels(fitted: dict[str, Any]) -> None:
    det, x = fitted["det"], fitted["x"]
    n = len(x)
    assert det.decision_scores_.shape == (n,)
    assert np.isfinite(det.decision_scores_).all()
    assert set(np.unique(det.labels_)) <= {0, 1}
    assert det.labels_.sum() > 0
    assert np.isscalar(det.threshold_) or np.ndim(det.threshold_) == 0
    new = det.decision_function(x[:10])
    assert new.shape == (10,)
    assert set(np.unique(det.predict(x[:10]))) <= {0, 1}


def test_detector_same_seed_same_scores(fitted: dict[str, Any]) -> None:
    again = make_detector(fitted["name"], random_state=0).fit(fitted["x"])
    np.testing.assert_allclose(again.decision_scores_, fitted["det"].decision_scores_)


def test_detector_auc_floor_on_planted_anomalies(fitted: dict[str, Any]) -> None:
    det = fitted["det"]
    auc = roc_auc_score(fitted["y"], det.decision_scores_)
    assert auc >= AUC_FLOOR[det.input_kind], f"{fitted['name']}: AUC {auc:.3f}"
    # higher = more anomalous: the planted rows score above the median on average
    assert det.decision_scores_[fitted["y"] == 1].mean() > np.median(det.decision_scores_)


def test_sampled_knn_scores_every_row_above_the_cap() -> None:
    from audit_lib.detect.scoring.ensemble import SampledKNN

    x, y = planted("tabular", seed=3)
    det = SampledKNN(max_rows=100, seed=0).fit(x)
    assert det.decision_scores_.shape == (len(x),)
    assert set(np.unique(det.labels_)) <= {0, 1}
    assert roc_auc_score(y, det.decision_scores_) >= 0.95
    again = SampledKNN(max_rows=100, seed=0).fit(x)
    np.testing.assert_allclose(again.decision_scores_, det.decision_scores_)
