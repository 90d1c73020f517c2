"""Synthetic daily consumption for the detection tests (generated, never stored)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_daily(
    rng: np.random.Generator,
    n: int = 60,
    days: int = 150,
    n_thieves: int = 6,
    drop_to: float = 0.25,
    missing: float = 0.03,
) -> tuple[np.ndarray, np.ndarray]:
    """Customers × days kWh with mixed scales (0.5 … 5,000 kWh/day), a shared season, a
    weekly rhythm, noise and missing days; ``n_thieves`` random customers drop to
    ``drop_to`` of their consumption from 60 % of the period on.

    Returns ``(values float32, labels int)``.
    """
    t = np.arange(days)
    scale = 10 ** rng.uniform(np.log10(0.5), np.log10(5000), size=(n, 1))
    season = 1.0 + 0.25 * np.sin(2 * np.pi * t / 365.0)[None, :]
    weekend = ((t % 7) >= 5)[None, :]
    weekly = 1.0 + 0.15 * weekend * rng.choice([-1.0, 1.0], size=(n, 1))
    noise = rng.gamma(8.0, 1.0 / 8.0, size=(n, days))
    values = scale * season * weekly * noise
    labels = np.zeros(n, dtype=int)
    thieves = rng.choice(n, n_thieves, replace=False)
    labels[thieves] = 1
    values[thieves, int(0.6 * days) :] *= drop_to
    values[rng.random((n, days)) < missing] = np.nan
    return values.astype(np.float32), labels


def to_long(values: np.ndarray, start: str = "2025-01-01") -> pd.DataFrame:
    """Long-format readings (cons_no, date, kwh) of a matrix, customers ``C0000``…."""
    n, days = values.shape
    dates = pd.date_range(start, periods=days, freq="D")
    return pd.DataFrame(
        {
            "cons_no": np.repeat([f"C{i:04d}" for i in range(n)], days),
            "date": np.tile(dates.values, n),
            "kwh": values.ravel().astype(np.float64),
        }
    )
