"""Shape features: right values on series whose answer is known, vectorised edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from detect_data import make_daily

from audit_lib.detect.scoring.features import FEATURES, shape_features, split_scan
from audit_lib.errors import DataError


def flat_panel(n: int = 30, days: int = 180, level: float = 10.0) -> np.ndarray:
    rng = np.random.default_rng(5)
    return (level * rng.gamma(50.0, 1 / 50.0, size=(n, days))).astype(np.float32)


def test_features_columns_and_one_row_per_customer(rng: np.random.Generator) -> None:
    values, _ = make_daily(rng, n=40, days=120)
    feats = shape_features(values)
    assert list(feats.columns) == list(FEATURES)
    assert len(feats) == 40


def test_features_drop_recent_measures_a_known_drop() -> None:
    values = flat_panel()
    values[0, -30:] *= 0.28  # 72 % down in the last 30 days
    feats = shape_features(values, recent=30, history=90)
    drop = 1 - np.exp(feats.loc[0, "drop_recent"])
    assert drop == pytest.approx(0.72, abs=0.04)
    assert abs(feats.loc[1:, "drop_recent"]).max() < 0.15


def test_features_are_scale_free() -> None:
    values = flat_panel()
    values[0, 100:] *= 0.4
    scaled = values.copy()
    scaled[0] *= 1000.0  # same shape, 1000× the kWh
    scaled[1] *= 0.05
    a, b = shape_features(values), shape_features(scaled)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-3, atol=1e-3)


def test_features_shared_season_is_not_a_drop() -> None:
    days = 365
    season = 1 + 0.5 * np.cos(2 * np.pi * np.arange(days) / 365)  # winter high, summer low
    values = flat_panel(days=days) * season[None, :].astype(np.float32)
    values[0, 250:] *= 0.3
    feats = shape_features(values)
    assert abs(feats.loc[1:, "drop_thirds"]).max() < 0.1  # season removed for everyone
    assert feats.loc[0, "drop_thirds"] < -0.8


def test_features_step_finds_the_split() -> None:
    values = flat_panel(days=200)
    values[3, 120:] *= 0.5
    feats = shape_features(values)
    assert feats["step_t"].idxmin() == 3
    assert feats.loc[3, "step_pos"] == pytest.approx(120 / 200, abs=0.04)  # weekly resolution
    assert np.exp(feats.loc[3, "step_drop"]) == pytest.approx(0.5, abs=0.05)


def test_features_zero_run_ignores_missing_days() -> None:
    values = flat_panel(days=100)
    values[2, 40:70] = 0.0
    values[2, 50] = np.nan  # a missing day inside the zero run does not break it
    feats = shape_features(values)
    assert feats.loc[2, "zero_run"] * 100 == pytest.approx(29)
    assert feats.loc[2, "zero_share"] == pytest.approx(29 / 99)
    assert feats.loc[2, "missing_share"] == pytest.approx(0.01)


def test_features_flattening_lowers_volatility() -> None:
    values = flat_panel(days=200)
    values[4, 100:] = np.float32(np.nanmean(values[4, 100:]))
    feats = shape_features(values)
    assert feats["vol_change"].idxmin() == 4
    assert feats["cv_change"].idxmin() == 4


def test_features_capped_meter_sits_at_its_ceiling() -> None:
    values = flat_panel(days=200)
    cap = np.quantile(values[2], 0.4)
    values[2, 100:] = np.minimum(values[2, 100:], cap)  # a clamp from day 100: ~60 % at the cap
    values[4] = np.round(values[4])  # whole kWh: ties at the top in both halves alike
    feats = shape_features(values)
    assert feats.loc[2, "ceiling_change"] == pytest.approx(0.6, abs=0.1)
    assert feats["ceiling_change"].idxmax() == 2
    assert abs(feats.drop(index=2)["ceiling_change"]).max() < 0.1


def test_features_weekly_pattern_loss() -> None:
    days = 210
    weekly = np.where(np.arange(days) % 7 >= 5, 2.0, 1.0).astype(np.float32)
    values = flat_panel(days=days) * weekly[None, :]
    values[5, 105:] = np.float32(np.nanmean(values[5, :105]))  # rhythm gone
    feats = shape_features(values, first_weekday=0)
    assert feats["weekly_change"].idxmin() == 5
    assert feats.loc[5, "weekly_change"] < -0.5


def test_features_peer_groups() -> None:
    values = flat_panel(n=40)
    values[:20] *= 100.0  # group 1 is 100× bigger
    values[25] *= 0.2  # small customer in the big group
    groups = np.r_[np.ones(20), np.zeros(20)].astype(int)
    groups[25] = 1
    feats = shape_features(values, groups)
    assert feats["level_vs_peers"].idxmin() == 25
    assert np.exp(feats.loc[25, "level_vs_peers"]) == pytest.approx(0.002, rel=0.2)


def test_features_bad_rows_do_not_crash() -> None:
    values = flat_panel(n=25, days=120)
    values[0] = np.nan  # never collected
    values[1] = 0.0  # all zero
    values[2, :5] = -3.0  # negative kWh → treated as missing
    values[3, :] = np.inf
    feats = shape_features(values)
    assert feats.loc[0, ["drop_recent", "drop_thirds", "step_t", "zero_share"]].isna().all()
    assert feats.loc[0, "missing_share"] == 1.0
    assert feats.loc[1, "zero_share"] == 1.0
    assert feats.loc[2, "missing_share"] == pytest.approx(5 / 120)
    assert np.isfinite(feats.loc[4:].to_numpy()).all()


def test_features_reject_non_matrix() -> None:
    with pytest.raises(DataError, match="customers × days"):
        shape_features(np.ones(10))


def test_split_scan_vectorised() -> None:
    series = np.r_[np.ones(30), np.full(30, 3.0)][None, :] + np.zeros((3, 1))
    series[1] = series[1][::-1]
    t_min, t_max, pos_min, pos_max, *_ = split_scan(series)
    assert pos_max[0] == pytest.approx(0.5) and pos_min[1] == pytest.approx(0.5)
    assert t_min[1] < -10 and t_max[0] > 10
