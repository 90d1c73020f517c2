"""Shared column ECDFs, threaded members and the one-pass IForest give pyod's exact scores."""

from __future__ import annotations

import threading

import numpy as np
import pyod.models.copod as copod_module
import pyod.models.ecod as ecod_module
import pyod.models.hbos as hbos_module
import pytest
from pyod.models.copod import COPOD
from pyod.models.ecod import ECOD
from pyod.utils.stat_models import column_ecdf

from audit_lib.detect.scoring import ecdf as ecdf_module
from audit_lib.detect.scoring.ecdf import ColumnTails, SharedCOPOD, SharedECOD, column_ecdfs


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


@pytest.mark.parametrize("shared", [True, False])
def test_shared_ecod_and_copod_score_as_pyods(shared: bool) -> None:
    x, new = features(1), features(2, n=700)
    plain = [m.fit(x) for m in (ECOD(), COPOD())]
    fit_tails = ColumnTails() if shared else None
    ours = [m.fit(x, tails=fit_tails) for m in (SharedECOD(), SharedCOPOD())]
    score_tails = ColumnTails() if shared else None
    for a, b in zip(plain, ours, strict=True):
        np.testing.assert_array_equal(b.decision_scores_, a.decision_scores_)
        assert b.threshold_ == a.threshold_
        np.testing.assert_array_equal(b.labels_, a.labels_)
        np.testing.assert_array_equal(
            b.decision_function(new, tails=score_tails), a.decision_function(new)
        )
        for table in ("U_l", "U_r", "U_skew", "O"):  # pyod's tables, as pyod keeps them
            np.testing.assert_array_equal(getattr(b, table), getattr(a, table))


def test_column_tails_computed_once_per_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_ecdfs, real_skew = ecdf_module.column_ecdfs, ecdf_module.skew

    def counted_ecdfs(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        calls.append("ecdfs")
        return real_ecdfs(matrix)

    def counted_skew(matrix: np.ndarray, axis: int = 0) -> np.ndarray:
        calls.append("skew")
        return np.asarray(real_skew(matrix, axis=axis))

    monkeypatch.setattr(ecdf_module, "column_ecdfs", counted_ecdfs)
    monkeypatch.setattr(ecdf_module, "skew", counted_skew)
    x, y = features(4), features(5)
    tails = ColumnTails()
    SharedECOD().fit(x, tails=tails)
    SharedCOPOD().fit(x.copy(), tails=tails)  # equal values, another array: shared too
    assert calls == ["ecdfs", "skew"]  # the second member reused the first one's
    SharedECOD().fit(y, tails=tails)
    assert calls == ["ecdfs", "skew"] * 2  # another matrix: computed again
    SharedECOD().fit(x)  # no tails given: its own, computed for it alone
    assert len(calls) == 6


def test_theft_ensemble_in_threads_equals_serial(monkeypatch: pytest.MonkeyPatch) -> None:
    from audit_lib.detect.scoring import ensemble as ensemble_module
    from audit_lib.detect.scoring.ensemble import DefaultEnsemble
    from audit_lib.detect.scoring.theft import THEFT_MEMBERS, THEFT_NORMALISER

    x = np.abs(features(3, n=3_000))

    def fit() -> np.ndarray:
        det = DefaultEnsemble(members=THEFT_MEMBERS, normaliser=THEFT_NORMALISER)
        return np.asarray(det.fit(x).decision_scores_)

    threaded = fit()
    monkeypatch.setattr(ensemble_module.os, "cpu_count", lambda: 1)
    serial = fit()
    np.testing.assert_array_equal(threaded, serial)


def test_ensembles_fit_at_once_in_threads_and_leave_pyod_alone() -> None:
    """Two theft ensembles on different rows, fitted and scoring at the same time, each give
    what it gives alone; no global of pyod's ECOD, COPOD or HBOS module is ever assigned."""
    from audit_lib.detect.scoring.ensemble import DefaultEnsemble
    from audit_lib.detect.scoring.theft import THEFT_MEMBERS, THEFT_NORMALISER

    modules = (ecod_module, copod_module, hbos_module)
    before = [dict(vars(m)) for m in modules]
    rows = [np.abs(features(6, n=2_500)), np.abs(features(7, n=2_000))]
    new = np.abs(features(8, n=300))

    def run(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        det = DefaultEnsemble(members=THEFT_MEMBERS, normaliser=THEFT_NORMALISER).fit(x)
        return np.asarray(det.decision_scores_), np.asarray(det.decision_function(new))

    alone = [run(x) for x in rows]
    together: list[tuple[np.ndarray, np.ndarray] | None] = [None, None]
    barrier = threading.Barrier(2)

    def worker(i: int) -> None:
        barrier.wait()
        together[i] = run(rows[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for want, got in zip(alone, together, strict=True):
        assert got is not None
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    for module, saved in zip(modules, before, strict=True):
        now = vars(module)
        assert now.keys() == saved.keys()
        assert all(now[k] is v for k, v in saved.items()), module.__name__


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
