"""Theft-suspicion score: ranking, bad rows, reasons, cross-fitting, evidence, metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from detect_data import make_daily, to_long
from sklearn.metrics import roc_auc_score

from audit_lib.detect.scoring.evidence import explain, explain_top
from audit_lib.detect.scoring.features import shape_features
from audit_lib.detect.scoring.inject import KINDS, inject_theft
from audit_lib.detect.scoring.metrics import map_at_k, precision_at_k
from audit_lib.detect.scoring.reasons import build_reasons
from audit_lib.detect.scoring.supervised import evaluate_blend
from audit_lib.detect.scoring.theft import TheftDetector, score_matrix, score_readings
from audit_lib.errors import DataError


@pytest.fixture(scope="module")
def panel() -> tuple[np.ndarray, np.ndarray]:
    values, labels = make_daily(np.random.default_rng(11), n=80, days=150, n_thieves=8)
    values[70, :] = 0.0  # all-zero customer
    values[71, 10:] = np.nan  # only 10 days collected
    values[72, 40:60] = 0.0  # zeros inside an otherwise normal series
    labels[70:73] = 0
    return values, labels


@pytest.fixture(scope="module")
def scored(panel: tuple[np.ndarray, np.ndarray]) -> pd.DataFrame:
    values, _ = panel
    keys = np.array([f"K{i:03d}" for i in range(len(values))])
    return score_matrix(values, keys)


def test_score_matrix_ranks_thieves_first(
    panel: tuple[np.ndarray, np.ndarray], scored: pd.DataFrame
) -> None:
    _, labels = panel
    by_key = scored.set_index("cons_no")
    ok = by_key["status"] == "scored"
    y = pd.Series(labels, index=[f"K{i:03d}" for i in range(len(labels))])
    assert roc_auc_score(y[ok.index[ok]], by_key.loc[ok, "score"]) >= 0.9
    assert scored["rank"].tolist() == list(range(1, len(scored) + 1))


def test_score_matrix_bad_rows_get_their_own_reason(scored: pd.DataFrame) -> None:
    by_key = scored.set_index("cons_no")
    assert by_key.loc["K070", "status"] == "all_zero"
    assert np.isnan(by_key.loc["K070", "score"])
    assert "零" in by_key.loc["K070", "reason_zh"] and "zero" in by_key.loc["K070", "reason_en"]
    assert by_key.loc["K071", "status"] == "too_few_days"
    assert "not scored" in by_key.loc["K071", "reason"]
    assert by_key.loc["K072", "status"] == "scored"
    assert len(scored) == 80 and scored["cons_no"].is_unique


def test_score_matrix_reasons_are_bilingual_one_liners(
    panel: tuple[np.ndarray, np.ndarray], scored: pd.DataFrame
) -> None:
    top = scored[scored["status"] == "scored"].head(5)
    for reason in top["reason"]:
        zh, en = reason.split(" / ", 1)
        assert zh and en and "\n" not in reason
    assert top["reason_en"].str.contains("drop|down|fell").any()  # planted drops explained


def test_score_matrix_is_repeatable(panel: tuple[np.ndarray, np.ndarray]) -> None:
    values, _ = panel
    a = score_matrix(values, random_state=3)
    b = score_matrix(values, random_state=3)
    pd.testing.assert_frame_equal(a, b)


def test_score_matrix_rejects_too_few_customers_or_days() -> None:
    values, _ = make_daily(np.random.default_rng(2), n=15, days=120)
    with pytest.raises(DataError, match="at least 20"):
        score_matrix(values)
    values, _ = make_daily(np.random.default_rng(2), n=30, days=60)
    with pytest.raises(DataError, match="at least 90"):
        score_matrix(values)


def test_theft_detector_is_cross_fitted(panel: tuple[np.ndarray, np.ndarray]) -> None:
    values, _ = panel
    det = TheftDetector(random_state=0).fit(values[:70])
    feats = det.features_.to_numpy()
    for k, (model, train) in enumerate(zip(det.models_, det.fold_train_, strict=True)):
        scored_here = np.flatnonzero(det.folds_ == k)
        assert not np.intersect1d(scored_here, train).size  # never scored by its own model
        np.testing.assert_allclose(
            det.self_scores_[scored_here], model.predict_proba(feats[scored_here])[:, 1]
        )


def test_capped_meter_is_ranked_and_explained() -> None:
    values, _ = make_daily(np.random.default_rng(3), n=60, days=200, n_thieves=0)
    cap = np.nanquantile(values[7], 0.4)
    values[7, 100:] = np.minimum(values[7, 100:], cap)  # clamp: the mean falls only ~20 %
    out = score_matrix(values, [f"K{i:03d}" for i in range(60)]).set_index("cons_no")
    assert out.loc["K007", "rank"] <= 3
    assert out.loc["K007", "reason_en"].startswith(("capped", "peaks flattened"))
    feats = shape_features(values)
    feats.loc[8, "ceiling_change"] = 0.5  # an untouched customer but for this one feature
    reasons = build_reasons(feats, recent=30, history=90, days=200)
    assert "50" in reasons[8] and "capped" in reasons[8]
    assert reasons[8].startswith("后半期电量多日顶格持平")


def test_explained_days_are_left_out_of_the_score() -> None:
    values, _ = make_daily(np.random.default_rng(4), n=60, days=200, n_thieves=0)
    values[9, 120:] *= 0.5  # readings halve at a meter replacement: the multiplier theme's
    keys = [f"K{i:03d}" for i in range(60)]
    plain = score_matrix(values, keys).set_index("cons_no")
    explained = (np.array([9]), np.array([120]))
    before = values.copy()
    left_out = score_matrix(values, keys, explained=explained).set_index("cons_no")
    assert plain.loc["K009", "rank"] <= 3
    assert left_out.loc["K009", "rank"] > 15  # its series now ends there (rank 20–28 by seed)
    np.testing.assert_array_equal(values, before)  # the caller's matrix is untouched


def test_score_readings_matches_matrix(panel: tuple[np.ndarray, np.ndarray]) -> None:
    values, _ = panel
    long = to_long(values)
    long = long.sample(frac=1.0, random_state=0)  # order must not matter
    long = long[~(long["kwh"].isna() & (long.index % 2 == 0))]  # some missing rows absent
    out = score_readings(long)
    direct = score_matrix(values, [f"C{i:04d}" for i in range(len(values))])
    merged = out.merge(direct, on="cons_no", suffixes=("", "_m"))
    np.testing.assert_allclose(merged["score"], merged["score_m"])
    assert out["reason"].str.contains(r"from 2025-\d\d-\d\d").any()  # calendar days named


def test_inject_theft_changes_only_after_start(rng: np.random.Generator) -> None:
    values, _ = make_daily(rng, n=200, days=120, n_thieves=0, missing=0.0)
    copies, kind = inject_theft(values, rng)
    assert copies.shape == values.shape and set(np.unique(kind)) == set(range(len(KINDS)))
    changed = ~np.isclose(copies, values)
    first = np.where(changed.any(axis=1), changed.argmax(axis=1), 120)
    assert (first >= int(0.15 * 120) - 1).all()
    assert (np.nansum(copies, axis=1) <= np.nansum(values, axis=1) * 1.05).mean() > 0.95


def test_explain_locates_the_change() -> None:
    rng = np.random.default_rng(4)
    kwh = 20 * rng.gamma(30, 1 / 30, size=180)
    kwh[110:] *= 0.3
    idx = pd.date_range("2025-01-01", periods=180, freq="D")
    ev = explain(pd.Series(kwh, index=idx))
    assert abs((ev["change_day"] - idx[110]).days) <= 7
    assert ev["change_pct"] < -50 and ev["p_value"] < 0.01


def test_metrics_map_and_precision_at_k() -> None:
    y = np.array([1, 0, 1, 0, 0, 1])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.1])
    assert precision_at_k(y, s, 3) == pytest.approx(2 / 3)
    assert map_at_k(y, s, 3) == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert map_at_k(y, s, 6) == pytest.approx((1 + 2 / 3 + 3 / 6) / 3)


def test_supervised_blend_is_evaluated_on_held_out_customers(rng: np.random.Generator) -> None:
    n = 600
    x = rng.standard_normal((n, 5))
    y = (x[:, 0] + 0.5 * rng.standard_normal(n) > 1.2).astype(int)
    unsup = x[:, 0] + rng.standard_normal(n)  # a weaker unsupervised view of the same signal
    customers = np.repeat(np.arange(n // 2), 2)  # two rows per customer
    out = evaluate_blend(x, y, unsup, customers=customers)
    assert out["supervised"]["roc_auc"] > out["unsupervised"]["roc_auc"]
    assert 0.5 < out["blend"]["roc_auc"] <= 1.0
    periods = np.tile([2024, 2025], n // 2)
    timed = evaluate_blend(x, y, unsup, periods=periods, cutoff=2025)
    assert set(timed) == {"unsupervised", "supervised", "blend"}


def test_explain_top_covers_only_the_top_k(
    panel: tuple[np.ndarray, np.ndarray], scored: pd.DataFrame
) -> None:
    values, labels = panel
    keys = [f"K{i:03d}" for i in range(len(values))]
    dates = pd.date_range("2025-01-01", periods=values.shape[1], freq="D")
    ev = explain_top(values, keys, scored, k=5, dates=dates)
    assert ev["cons_no"].tolist() == scored["cons_no"].head(5).tolist()
    thieves = {keys[i] for i in np.flatnonzero(labels)}
    hits = ev[ev["cons_no"].isin(thieves)]
    assert (hits["change_pct"] < -40).all() and len(hits) >= 3


@pytest.mark.parametrize("rows", [1, 2, 7, 8, 1000, 1001])
def test_nanmedian_columns_equals_numpy(rows: int) -> None:
    import warnings

    from audit_lib.detect.kernels.rowstats import nanmedian_columns

    rng = np.random.default_rng(rows)
    x = rng.standard_normal((rows, 5))
    x[:, 1] = np.round(x[:, 1])  # ties
    x[rng.random(x.shape) < 0.2] = np.nan
    x[:, 4] = np.nan  # a column without a value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.nanmedian(x, axis=0)
    np.testing.assert_array_equal(nanmedian_columns(x), want)
