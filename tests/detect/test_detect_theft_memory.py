"""The theft score's copies avoided at 10⁶ customers give the same results as the copies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from detect_data import make_daily

from audit_lib.detect.scoring import theft as theft_module
from audit_lib.detect.scoring.features import check_matrix
from audit_lib.detect.scoring.theft import scorable_rows, score_matrix


def dirty(seed: int = 0, n: int = 300, days: int = 120) -> np.ndarray:
    values, _ = make_daily(np.random.default_rng(seed), n=n, days=days)
    rng = np.random.default_rng(seed + 1)
    flat = values.reshape(-1)
    flat[rng.integers(0, flat.size, 200)] = -3.0
    flat[rng.integers(0, flat.size, 20)] = np.inf
    flat[rng.integers(0, flat.size, 20)] = -np.inf
    return values


def test_check_matrix_cleans_like_the_numpy_rule() -> None:
    values = dirty()
    want = np.where(np.isfinite(values) & (values >= 0), values, np.float32(np.nan))
    got = check_matrix(values)
    np.testing.assert_array_equal(got, want)
    assert (values < 0).any()  # the input is left alone by default
    clean = np.abs(np.nan_to_num(values, posinf=1.0, neginf=1.0))
    assert check_matrix(clean) is clean
    same = check_matrix(values, overwrite_input=True)
    assert np.shares_memory(same, values)
    np.testing.assert_array_equal(values, want)


def test_scorable_rows_in_place_equal_the_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    values = rng.random((1000, 9), dtype=np.float32)
    ok = rng.random(1000) < 0.7
    want = values[ok]
    monkeypatch.setattr(theft_module, "GATHER_ROWS", 64)  # many blocks, the last one short
    got = scorable_rows(values, ok, in_place=True)
    assert np.shares_memory(got, values)
    np.testing.assert_array_equal(got, want)
    assert scorable_rows(values, np.ones(1000, bool), in_place=False) is values


def test_score_matrix_overwriting_its_input_scores_the_same() -> None:
    values = dirty(seed=3, n=400, days=150)
    values[:7, 40:] = np.nan  # too few days: not scorable, so rows are gathered
    values[7:10] = 0.0  # all zero: not scorable
    keys = np.array([f"C{i:04d}" for i in range(len(values))])
    want = score_matrix(values.copy(), keys)
    got = score_matrix(values, keys, overwrite_input=True)
    pd.testing.assert_frame_equal(got, want)
    assert (want.status == "scored").sum() == len(values) - 10


def test_split_reason_equals_str_split() -> None:
    from audit_lib.detect.scoring.theft import split_reason

    reason = pd.Series(["甲乙 / abc d / x", "only", "丙 / def", ""] * 50, index=np.arange(200) * 3)
    parts = reason.str.split(" / ", n=1, expand=True)
    zh, en = split_reason(reason)
    pd.testing.assert_series_equal(zh, parts[0], check_names=False)
    pd.testing.assert_series_equal(en, parts[1].fillna(parts[0]), check_names=False)


def test_frame_rows_find_each_customers_input_row() -> None:
    from audit_lib.detect.scoring.base import scores_frame
    from audit_lib.detect.scoring.theft import frame_rows

    rng = np.random.default_rng(8)
    scores = np.round(rng.random(500), 2)  # many ties
    scores[rng.random(500) < 0.1] = np.nan
    keys = np.array([f"K{i:04d}" for i in rng.permutation(500)], dtype=object)
    frame = scores_frame(keys, scores)
    rows = frame_rows(frame["cons_no"], keys, scores)
    np.testing.assert_array_equal(keys[rows].astype(str), frame["cons_no"].to_numpy(dtype=str))
    ints = np.arange(500)  # keys that are not text: found by lookup instead
    rows = frame_rows(scores_frame(ints, scores)["cons_no"], ints, scores)
    np.testing.assert_array_equal(rows, np.argsort(-scores, kind="stable"))


def test_score_matrix_masking_zero_runs_itself_scores_as_the_masked_copy() -> None:
    from audit_lib.detect.scoring.corroborate import mask_zero_runs

    values = dirty(seed=5, n=300, days=150)
    values[3:6, 20:80] = 0.0  # 60 zero days: masked (the zero theme's)
    values[6, 20:40] = 0.0  # 20 zero days: kept
    opened = np.ones(values.shape, dtype=bool)
    opened[7, :50] = False  # not open yet: masked
    keys = np.array([f"C{i:04d}" for i in range(len(values))])
    before = values.copy()
    got = score_matrix(values, keys, zero_runs=(30, opened))
    want = score_matrix(mask_zero_runs(values, 30, opened), keys)
    pd.testing.assert_frame_equal(got, want)
    np.testing.assert_array_equal(values, before)  # the caller's matrix is left alone
    assert not got.equals(score_matrix(values, keys))  # the masking changed something


def test_fit_is_prepare_then_fit_prepared() -> None:
    from audit_lib.detect.scoring.theft import TheftDetector

    values, _ = make_daily(np.random.default_rng(6), n=120, days=120)
    whole = TheftDetector(random_state=2).fit(values)
    det = TheftDetector(random_state=2)
    training = det.prepare(values)
    assert not any(np.shares_memory(a, values) for a in vars(training).values())
    det.fit_prepared(training)
    np.testing.assert_array_equal(det.decision_scores_, whole.decision_scores_)


def test_absurd_days_follow_the_rule() -> None:
    from audit_lib.data.absurd import absurd_cells, absurd_days

    days = 60
    x = np.full((5, days), 8.0, dtype=np.float32)
    x[0, 3] = 2e6  # above the daily limit
    x[1, 4] = 9000.0  # > 1000 kWh and > 1000 × the median (8)
    x[2] = 4000.0  # a factory: large, but its own level
    x[2, 9] = 30000.0  # 7.5 × its median: a busy day, not a data error
    x[3, :50] = 0.05  # a vacant dwelling (standby) ...
    x[3, 50:] = 60.0  # ... moving in: 1200 × the median, but under 1000 kWh
    x[4, 7] = np.nan  # missing days stay missing
    rule = (1000.0, 1000.0, 1e6)
    np.testing.assert_array_equal(absurd_days(x, *rule, False), [1, 1, 0, 0, 0])
    np.testing.assert_array_equal(absurd_cells(x, *rule), [0 * days + 3, 1 * days + 4])
    view = x[:, 2:40]  # a covering view of a longer matrix: no copy needed
    assert not view.flags.c_contiguous
    np.testing.assert_array_equal(absurd_cells(view, *rule), [0 * 38 + 1, 1 * 38 + 2])
    kept = x.copy()
    assert absurd_days(x, *rule, True).sum() == 2
    assert np.isnan(x[0, 3]) and np.isnan(x[1, 4])
    changed = np.isnan(x) != np.isnan(kept)
    assert changed.sum() == 2  # nothing else touched
    np.testing.assert_array_equal(x[2:], kept[2:])


def test_absurd_reading_is_left_out_and_named_not_scored_as_a_drop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values, _ = make_daily(np.random.default_rng(12), n=150, days=200, n_thieves=10)
    values[140, 20] = 5e7  # one absurd day early: every later day would look like a drop
    values[141, 50:53] = 2e4 * np.nanmedian(values[141])  # three shifted decimals
    keys = np.array([f"C{i:04d}" for i in range(len(values))])
    before = values.copy()
    out = score_matrix(values, keys).set_index("cons_no")
    np.testing.assert_array_equal(values, before)  # the caller's matrix is left alone
    for key, n in (("C0140", 1), ("C0141", 3)):
        assert f"{n} absurd daily reading" in out.loc[key, "reason_en"]
        assert f"{n}日读数异常偏大" in out.loc[key, "reason_zh"]
    clean = before.copy()
    clean[140, 20] = np.nan
    clean[141, 50:53] = np.nan
    want = score_matrix(clean, keys).set_index("cons_no")
    np.testing.assert_allclose(out["score"], want.loc[out.index, "score"])  # left out, exactly
    from audit_lib.data import absurd

    monkeypatch.setattr(absurd, "RULE", (np.inf, np.inf, np.inf))
    unruled = score_matrix(values, keys).set_index("cons_no")
    assert unruled.loc["C0140", "rank"] <= 3  # what the rule prevents: a data error on top
    assert unruled.loc["C0140", "rank"] < out.loc["C0140", "rank"]
