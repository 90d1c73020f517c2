"""Corroboration of theft suspects: zero runs left to their theme, alarms at the drop, and
legitimate-absence copies for the self-supervision."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from detect_data import make_daily

from audit_lib.detect.scoring import corroborate
from audit_lib.detect.scoring.inject import inject_absence


def test_mask_zero_runs_blanks_only_long_runs() -> None:
    x = np.ones((3, 100), dtype=np.float32)
    x[0, 10:50] = 0.0  # 40 zero days: long
    x[1, 10:30] = 0.0  # 20 zero days: short
    x[2, 10:25] = 0.0
    x[2, 25] = np.nan  # a missing day neither breaks nor lengthens the run
    x[2, 26:42] = 0.0  # 15 + 16 = 31 zero days
    out = corroborate.mask_zero_runs(x, 30)
    assert np.isnan(out[0, 10:50]).all() and (out[0, :10] == 1).all() and out[0, 50] == 1
    np.testing.assert_array_equal(out[1], x[1])  # short run kept as zeros
    assert np.isnan(out[2, 10:42]).all() and out[2, 42] == 1


def test_step_columns_find_the_drop() -> None:
    x = np.full((2, 140), 10.0, dtype=np.float32)
    x[0, 70:] = 3.0
    x[1, :] = np.nan
    step = corroborate.step_columns(x)
    assert abs(int(step[0]) - 70) <= 7
    assert step[1] == -1  # nothing observed: no step


def test_theme_step_columns_see_the_context_matrix_without_absurd_days() -> None:
    from audit_lib.data.matrix import ConsumptionMatrix
    from audit_lib.detect.themes.theft_suspicion import absurd_counts, step_columns

    rng = np.random.default_rng(3)
    x = (10.0 * rng.gamma(20.0, 1 / 20.0, size=(3, 200))).astype(np.float32)
    x[:, 140:] *= 0.3  # a drop at day 140 for everyone
    x[1, 30] = 5e4  # a shifted decimal: alone it would be the biggest change
    raw = ConsumptionMatrix(x.copy(), np.array(["A", "B", "C"]), pd.date_range("2025-01-01",
                            periods=200))  # fmt: skip
    assert abs(int(step_columns(raw.values, np.array([1]))[0]) - 30) <= 7  # the error
    np.testing.assert_array_equal(absurd_counts(raw), [0, 0, 0])  # not looked for
    clean = raw.without_absurd()  # what the detection context holds
    assert clean.values is raw.values and np.isnan(clean.values[1, 30])
    np.testing.assert_array_equal(absurd_counts(clean), [0, 1, 0])
    assert clean.absurd is not None and clean.absurd[1].tolist() == [5e4]
    before = clean.values.copy()
    step = step_columns(clean.values, np.array([1, 0]), (30, np.ones(x.shape, dtype=bool)))
    np.testing.assert_array_equal(clean.values, before)  # the zero-run mask works on a copy
    assert abs(int(step[0]) - 140) <= 7
    assert step[1] == step_columns(clean.values, np.array([0]))[0]


def test_alarms_at_drop_counts_only_tamper_codes_near_the_step() -> None:
    dates = pd.date_range("2025-01-01", periods=100)
    cons = np.array(["A", "B", "C", "D"])
    step = np.array([50, 50, 50, -1])
    events = pd.DataFrame(
        {
            "cons_no": ["A", "B", "C", "D", "Z"],
            "time": pd.to_datetime(
                ["2025-02-22", "2025-01-05", "2025-02-20", "2025-02-20", "2025-02-20"]
            ),
            "code": ["ERC37", "ERC37", "ERC17", "ERC30", "ERC37"],
        }
    )
    at_drop, codes = corroborate.alarms_at_drop(events, cons, dates, step)
    assert at_drop.tolist() == [True, False, False, False]  # B far, C not tamper, D no step
    assert codes.tolist() == ["ERC37", "", "", ""]


def test_an_alarm_on_the_day_a_replacement_meter_was_fitted_is_the_fitters() -> None:
    meters = pd.DataFrame(
        {
            "cons_no": ["A", "A", "B", "C"],
            "install_date": pd.to_datetime(
                ["2020-05-01", "2025-02-20", "2025-02-20", "2019-01-01"]
            ),
        }
    )
    events = pd.DataFrame(
        {
            "cons_no": ["A", "A", "A", "B", "C"],
            "time": pd.to_datetime(
                [
                    "2025-02-20 10:31",
                    "2025-02-21 08:00",
                    "2025-03-10 09:00",
                    "2025-02-20 12:00",
                    "2025-02-20 12:00",
                ]
            ),
            "code": ["ERC37"] * 5,
        }
    )
    fitted = corroborate.at_fitting(events, meters)
    # A's second meter went in on 02-20: that day and the next are the fitter's, 03-10 is not;
    # B's only meter (a new account) and C's old one are no replacements
    assert fitted.tolist() == [True, True, False, False, False]
    assert not corroborate.at_fitting(events.iloc[:0], meters).any()


def test_combine_lifts_alarmed_customers_and_keeps_nan() -> None:
    score = np.array([0.99, 0.95, 0.5, np.nan])
    out = corroborate.combine(score, np.array([False, True, False, False]), odds=10.0)
    assert out[1] > out[0] > out[2]  # 10× the odds beats a rank of 0.99 vs 0.95
    assert np.isnan(out[3])
    same = corroborate.combine(score, np.zeros(4, dtype=bool))
    assert np.argsort(same[:3]).tolist() == np.argsort(score[:3]).tolist()


@pytest.mark.parametrize("open_share", [0.0, 0.5, 1.0])
def test_inject_absence_is_a_standby_stretch(open_share: float) -> None:
    rng = np.random.default_rng(3)
    values, _ = make_daily(rng, n=300, days=200, n_thieves=0, missing=0.0)
    copies = inject_absence(values, rng, open_share=open_share)
    assert copies.shape == values.shape
    np.testing.assert_array_equal(np.isnan(copies), np.isnan(values))  # NaN stays NaN
    low = copies < 0.3 * np.nanmean(values, axis=1, keepdims=True)
    assert (low.sum(axis=1) >= 15).mean() > 0.9  # every copy has a stretch of standby days
    back = (copies[:, -1] == values[:, -1]).mean()  # ... that has ended by the last day
    assert abs(back - (1.0 - open_share)) < 0.1
    still = copies[:, -1] != values[:, -1]
    assert not still.any() or low[still, -14:].mean() > 0.8  # the others are away to the end


def test_mask_zero_runs_blanks_closed_days() -> None:
    x = np.ones((2, 10), dtype=np.float32)
    opened = np.ones((2, 10), dtype=bool)
    opened[1, :4] = False  # moved in on day 4
    out = corroborate.mask_zero_runs(x, 30, opened)
    assert np.isnan(out[1, :4]).all() and (out[1, 4:] == 1).all() and (out[0] == 1).all()


def test_mask_zero_runs_in_blocks_equals_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    x = rng.gamma(2.0, 3.0, (500, 120)).astype(np.float32)
    for i in range(0, 500, 7):  # zero runs of every length, some across missing days
        start = rng.integers(0, 80)
        x[i, start : start + rng.integers(5, 60)] = 0.0
    x[rng.random(x.shape) < 0.05] = np.nan
    opened = rng.random(x.shape) > 0.02
    whole = [corroborate.mask_zero_runs(x, 30, opened), corroborate.mask_zero_runs(x, 30)]
    assert np.isnan(whole[0]).sum() > np.isnan(whole[1]).sum() > np.isnan(x).sum()
    monkeypatch.setattr(corroborate, "MASK_ROWS", 37)  # 14 blocks, in threads
    np.testing.assert_array_equal(corroborate.mask_zero_runs(x, 30, opened), whole[0])
    np.testing.assert_array_equal(corroborate.mask_zero_runs(x, 30), whole[1])
