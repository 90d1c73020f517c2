"""The multiplier theme (倍率异常): the balance estimate on small synthetic areas whose answer is
known, the decision rules, and the theme on a small generated city (a wrong multiplier from the
start, and one left unchanged at a meter replacement)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit_lib.data.access import Mart
from audit_lib.data.ct_ratios import nearest_standard
from audit_lib.demo.generate import DEFAULT_RATES, DemoConfig, generate_demo
from audit_lib.detect.context import DetectionContext
from audit_lib.detect.evaluate import kind_recall, theme_scores, truth_in_period
from audit_lib.detect.scoring.balance_fit import (
    BalanceFit,
    joint_ratio,
    level_ratio,
    pool,
    segment_masks,
)
from audit_lib.detect.scoring.replacement import StepFit, step_disagrees
from audit_lib.detect.themes.multiplier_anomaly import (
    balance_disagrees,
    detect_multiplier_anomaly,
    plausibility,
    standard_multipliers,
)
from audit_lib.themes.catalogue import get_theme

DAYS = 360


def _area(
    rng: np.random.Generator, factors: list[float], steal_from: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One public area: CT customers recorded at ``factors`` × their physical kWh, 100
    residential customers, supply = 1.03 × physical + noise. Returns recorded CT readings,
    the area's supply and its metered sum (1 × days each for the area)."""
    week = 1.0 + 0.3 * (np.arange(DAYS) % 7 < 5)
    true_ct = np.stack(
        [rng.uniform(100, 400) * week * rng.lognormal(0.0, 0.25, DAYS) for _ in factors]
    )
    homes = rng.lognormal(np.log(5.0), 0.4, (100, DAYS)).sum(0)
    recorded = true_ct * np.asarray(factors)[:, None]
    if steal_from is not None:  # a theft that starts half way: the ratio moves
        recorded[:, steal_from:] *= 0.4
    supply = 1.03 * (true_ct.sum(0) + homes) + rng.normal(0.0, 2.0, DAYS)
    return recorded, supply[None, :], (recorded.sum(0) + homes)[None, :]


def _joint(recorded: np.ndarray, supply: np.ndarray, consumed: np.ndarray, segments: int = 4):
    area = np.zeros(len(recorded), dtype=np.int64)
    computable = np.ones_like(supply, dtype=bool)
    return joint_ratio(recorded, area, supply, consumed, computable, segment_masks(DAYS, segments))


def test_segment_masks_split_the_window_into_consecutive_parts() -> None:
    masks = segment_masks(10, 4)
    assert masks.shape == (4, 10)
    assert (masks.sum(0) == 1).all()  # every day in exactly one part
    first_day = masks.argmax(1)
    assert (np.diff(first_day) > 0).all()  # in order


def test_joint_ratio_recovers_each_wrong_factor_in_a_shared_area() -> None:
    rng = np.random.default_rng(5)
    recorded, supply, consumed = _area(rng, [1.0, 2.0, 0.5])  # two wrong ones in one area
    log_r, se = _joint(recorded, supply, consumed)
    ratio, pooled_se = pool(log_r, se)
    # physical ÷ recorded = 1 / factor
    np.testing.assert_allclose(np.exp(ratio), [1.0, 0.5, 2.0], rtol=0.03)
    assert (pooled_se < 0.05).all()


def test_joint_ratio_batches_areas_of_different_sizes_alike() -> None:
    rng = np.random.default_rng(6)
    areas = [_area(rng, f) for f in ([1.0], [1.5, 1.0], [1.0, 1.0, 0.75])]
    recorded = np.vstack([a[0] for a in areas])
    area = np.repeat(np.arange(3), [1, 2, 3])
    supply = np.vstack([a[1] for a in areas])
    consumed = np.vstack([a[2] for a in areas])
    masks = segment_masks(DAYS, 3)
    log_r, _ = joint_ratio(recorded, area, supply, consumed, np.ones_like(supply, bool), masks)
    expected = 1.0 / np.array([1.0, 1.5, 1.0, 1.0, 1.0, 0.75])
    np.testing.assert_allclose(np.exp(log_r), np.repeat(expected[:, None], 3, 1), rtol=0.06)


def test_joint_ratio_drops_days_with_a_missing_reading_and_uncomputable_days() -> None:
    rng = np.random.default_rng(7)
    recorded, supply, consumed = _area(rng, [2.0])
    recorded[0, 10:40] = np.nan  # not collected: those days must not count
    consumed[0, 10:40] = 0.0
    log_r, _ = _joint(recorded, supply, consumed, segments=1)
    np.testing.assert_allclose(np.exp(log_r[0, 0]), 0.5, rtol=0.03)


def test_level_ratio_of_a_dedicated_transformer() -> None:
    rng = np.random.default_rng(8)
    physical = rng.uniform(500, 900, (2, DAYS))
    recorded = physical * np.array([[1.0], [2 / 3]])
    supply = physical * 1.01 * (1 + rng.normal(0, 0.003, (2, DAYS)))
    log_r, se = level_ratio(recorded, supply, np.ones((2, DAYS), bool), segment_masks(DAYS, 4))
    np.testing.assert_allclose(np.exp(log_r), [[1.0] * 4, [1.5] * 4], rtol=0.005)
    assert (se >= 0.005).all()  # never firmer than the unknown transformer loss


def test_pool_inflates_the_error_when_segments_disagree() -> None:
    agree = np.log([[1.5, 1.5, 1.5, 1.5]])
    moves = np.log([[1.0, 1.0, 2.0, 2.0]])  # a theft that started half way
    se = np.full((1, 4), 0.05)
    m1, s1 = pool(agree, se)
    m2, s2 = pool(moves, se)
    np.testing.assert_allclose(m1, np.log(1.5))
    np.testing.assert_allclose(s1, 0.05 / 2)  # four equal errors: se / √4
    q = 4 * (np.log(2) / 2) ** 2 / 0.05**2  # Cochran's Q around the mean log(√2)
    np.testing.assert_allclose([m2[0], s2[0]], [np.log(2) / 2, 0.05 / 2 * np.sqrt(q / 3)])
    assert s2[0] > 5 * s1[0]
    m3, s3 = pool(np.array([[np.nan, 0.4, np.nan, np.nan]]), se)  # one segment: its own
    np.testing.assert_allclose([m3[0], s3[0]], [0.4, 0.05])


def _fit(ratio: float, z: float, segments: int = 4) -> BalanceFit:
    one = np.ones(1)
    seg = np.full((1, 4), ratio)
    return BalanceFit(one * ratio, one * 0.01, one * z, seg, one * segments, one * 0.1, one < 0)


@pytest.mark.parametrize(
    ("ratio", "z", "ct_over", "segments", "expected"),
    [
        (1.5, 20.0, 1.5, 4, True),  # firm, implied CT 2.25 × rated: plausible
        (1.5, 3.0, 1.5, 4, False),  # not firm enough
        (1.1, 20.0, 1.5, 4, False),  # within the tolerance
        (0.4, 20.0, 1.5, 4, False),  # implied CT 0.6 × rated current: more likely a theft
        (2.5, 20.0, 1.5, 4, False),  # implied CT 3.75 × rated: oversized
        (1.5, 20.0, 1.5, 1, False),  # one segment cannot show the factor is constant
    ],
)
def test_balance_disagrees_needs_a_firm_constant_plausible_factor(
    ratio: float, z: float, ct_over: float, segments: int, expected: bool
) -> None:
    theme = get_theme("multiplier_anomaly")
    got = balance_disagrees(_fit(ratio, z, segments), np.array([ct_over]), theme)
    assert bool(got[0]) is expected


def test_plausibility_standard_ratios_and_rated_current() -> None:
    assert {20.0, 30.0, 1500.0, 7000.0} <= set(standard_multipliers())
    p = plausibility(np.array([30.0, 22.0]), np.array([80.0, 80.0]), np.array([0.38, 0.38]))
    assert p["standard"].tolist() == [True, False]
    np.testing.assert_allclose(p["ct_primary_a"], [150.0, 110.0])
    np.testing.assert_allclose(p["rated_a"], 80.0 / (np.sqrt(3) * 0.4))  # 0.4 kV nominal


def test_nearest_standard_snaps_to_a_ct_at_the_customers_voltage() -> None:
    got = nearest_standard(
        np.array([14.2, 82.0, 2950.0, np.nan, -3.0]), np.array([0.38] * 2 + [10.0] * 3)
    )
    np.testing.assert_allclose(got[:3], [15.0, 80.0, 3000.0])  # 75/5; 400/5; 150/5 × 10 kV/100 V
    assert np.isnan(got[3:]).all()


def _step(step: float, factor: float, implied: float, standard: float, z: float) -> StepFit:
    one = np.ones(1)
    return StepFit(one * 100.0, one * 100.0 * step, one * factor, one * 50.0, one * z,
                   one * implied, one * standard)  # fmt: skip


@pytest.mark.parametrize(
    ("step", "factor", "implied", "standard", "z", "expected"),
    [
        (0.52, 0.5, 60.0, 60.0, 12.0, True),  # CT 150/5 fitted, 30 kept: readings halved
        (2.3, 2.0, 15.2, 15.0, 9.0, True),  # CT halved: readings doubled, area loss fell
        (0.5, 1.02, 29.4, 30.0, 12.0, False),  # use fell, the area's balance did not move
        (0.5, 0.5, 60.0, 60.0, 2.0, False),  # the area's change is within its daily noise
        (1.0, 0.5, 60.0, 60.0, 12.0, False),  # the readings did not step: something else
        (0.55, 0.55, 54.5, 60.0, 12.0, False),  # implies no standard multiplier
    ],
)
def test_step_disagrees_needs_a_confirmed_step_to_another_standard_multiplier(
    step: float, factor: float, implied: float, standard: float, z: float, expected: bool
) -> None:
    theme = get_theme("multiplier_anomaly")
    got = step_disagrees(_step(step, factor, implied, standard, z), np.array([30.0]), theme)
    assert bool(got[0]) is expected


START, END = dt.date(2024, 1, 1), dt.date(2024, 12, 30)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("multiplier_city")
    rates = {**DEFAULT_RATES, "wrong_multiplier": 0.01, "multiplier_not_updated": 0.01}
    config = DemoConfig(bureaus=1, customers=3000, days=365, start=START, seed=12, rates=rates)
    generate_demo(out, config)
    return out


def test_multiplier_theme_finds_the_injected_multipliers(city: Path) -> None:
    theme = get_theme("multiplier_anomaly")
    truth = truth_in_period(pd.read_parquet(city / "truth.parquet"), "YZ", START, END)
    with Mart(city / "mart") as mart:
        ctx = DetectionContext(mart, "YZ", START, END)
        hits = detect_multiplier_anomaly(ctx, theme)
    findings = hits.assign(theme_id=theme.id, bureau="YZ")
    row = theme_scores(findings, truth).set_index("theme").loc[theme.id]
    assert row["precision"] >= 0.9, row
    assert not hits["entity"].duplicated().any()  # one finding per customer
    per_kind = kind_recall(findings, truth).set_index("kind")
    wrong, late = per_kind.loc["wrong_multiplier"], per_kind.loc["multiplier_not_updated"]
    assert wrong["injected"] >= 10 and wrong["recall"] >= 0.9, wrong
    # a small CT customer in a large public area does not move its balance: not all are found
    assert late["injected"] >= 10 and late["recall"] >= 0.6, late
    step = hits[hits["reason_en"].str.contains("meter replacement on")]
    assert len(step) > 0 and step["reason_zh"].str.contains("换表").all()
    replaced = truth[truth["kind"] == "multiplier_not_updated"].set_index("entity")["start"]
    for row in step.itertuples():  # the finding names the replacement day of the truth
        assert row.evidence["replaced_on"] == replaced[row.entity].strftime("%Y-%m-%d")
        assert row.evidence["area_z"] >= theme.param("step_min_z")
    balance = hits[hits["reason_en"].str.contains("energy balance")]
    assert len(balance) > 0  # some only the balance can find
    assert balance["reason_zh"].str.contains("时段比值").all()
    evidence = balance["evidence"].iloc[0]
    assert len(evidence["segment_ratios"]) == theme.param("segments")
    assert evidence["balance_z"] >= theme.param("min_z")
