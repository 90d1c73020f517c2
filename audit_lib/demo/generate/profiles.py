"""True daily consumption: a customers × days float32 matrix.

kWh[i, t] = base[i] · (1 + summer[i]·S[t]·(1 + heat[t]) + winter[i]·W[t]) · F[class[i], t]
            · weekly level noise · daily log-normal noise

- S, W: Chongqing seasonality — a long hot summer peaking late July / early August (air
  conditioning) and a smaller damp-winter peak in January; ``heat`` is a city-wide AR(1)
  weather anomaly (heat waves), shared by every bureau.
- F: day-type ratios (workday / Saturday / Sunday-holiday) from the BDEW 2025 profiles
  (H25 households, G25 commerce — damped for Chongqing commerce and industry, which work at
  weekends —, L25 agriculture), and the Spring Festival: homes up, commerce and industry
  down for about two weeks.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources

import numpy as np

from audit_lib.demo.generate.calendar import Calendar
from audit_lib.demo.generate.population import Population

CHUNK = 2048  # customers per block: temporaries stay in cache; fixed so results never vary
PROFILE_FILES = ("bdew2025_h25", "bdew2025_g25", "bdew2025_g25", "bdew2025_l25")
WEEKEND_DAMPING = (1.0, 0.4, 0.5, 1.0)  # share of the BDEW weekend dip kept, per class
DAYTYPES = ("WT", "SA", "FT")


@lru_cache(maxsize=4)
def bdew_day_ratios(name: str) -> np.ndarray:
    """(12, 3) ratios of each day type's daily total to the same month's workday total."""
    totals = np.zeros((12, 3))
    path = resources.files("audit_lib.demo") / "loadprofiles" / f"{name}_typedays_15min.csv"
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            totals[int(row["month"]) - 1, DAYTYPES.index(row["daytype"])] += float(
                row["kwh_per_quarter_hour"]
            )
    return totals / totals[:, :1]


def trapezoid(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    """0 before ``a``, rising to 1 at ``b``, 1 until ``c``, back to 0 at ``d``."""
    up = np.clip((x - a) / (b - a), 0, 1)
    down = np.clip((d - x) / (d - c), 0, 1)
    return np.minimum(up, down)


def class_day_factors(cal: Calendar) -> np.ndarray:
    """(4, days) float32 multipliers per class: day type and Spring Festival."""
    month = cal.dates.astype("datetime64[M]").astype(np.int64) % 12
    out = np.empty((4, cal.days), dtype=np.float32)
    for c, (name, keep) in enumerate(zip(PROFILE_FILES, WEEKEND_DAMPING, strict=True)):
        ratio = bdew_day_ratios(name)[month, cal.day_type]
        out[c] = 1.0 - keep * (1.0 - ratio)
    off = cal.festival_offset.astype(np.float64)
    out[0] *= 1.0 + 0.25 * trapezoid(off, -8, -2, 8, 14)  # families home, heating
    out[1] *= 1.0 - 0.45 * trapezoid(off, -10, -3, 8, 16)  # shops, offices close
    out[2] *= 1.0 - 0.65 * trapezoid(off, -12, -4, 10, 18)  # factories stop till 元宵
    out[3] *= 1.0 - 0.10 * trapezoid(off, -5, 0, 6, 10)
    return out


def season_curves(cal: Calendar) -> tuple[np.ndarray, np.ndarray]:
    """Summer (peak ~31 July, broad June–September) and winter (~15 January) bumps in 0..1."""
    doy = (cal.dates - cal.dates.astype("datetime64[Y]")).astype(np.int64).astype(np.float64)
    summer = np.exp(-0.5 * ((doy - 211.0) / 30.0) ** 2)
    dist = np.abs(doy - 14.0)
    dist = np.minimum(dist, 365.0 - dist)
    winter = np.exp(-0.5 * (dist / 24.0) ** 2)
    return summer.astype(np.float32), winter.astype(np.float32)


def heat_anomaly(seed: int, days: int) -> np.ndarray:
    """City-wide weather anomaly (AR(1), shared by all bureaus): heat waves and cool spells."""
    rng = np.random.default_rng([seed, 2_000_003])
    shocks = rng.normal(0.0, 0.12, days)
    out = np.empty(days)
    level = 0.0
    for t in range(days):  # one loop over days, not customers
        level = 0.8 * level + shocks[t]
        out[t] = level
    return out.astype(np.float32)


def true_consumption(
    rng: np.random.Generator, pop: Population, cal: Calendar, heat: np.ndarray
) -> np.ndarray:
    """Daily kWh each customer really consumes (before any theft or metering error).

    Returns
    -------
    numpy.ndarray
        float32, shape (customers, days).
    """
    n, d = len(pop), cal.days
    summer, winter = season_curves(cal)
    summer = summer * np.maximum(1.0 + heat * 2.0, 0.2)
    factors = class_day_factors(cal)
    weeks = (d + 6) // 7
    out = np.empty((n, d), dtype=np.float32)
    for lo in range(0, n, CHUNK):  # blocks of 2,048 customers, vectorised inside
        hi = min(n, lo + CHUNK)
        block = out[lo:hi]
        np.multiply(pop.summer[lo:hi, None], summer[None, :], out=block)
        block += pop.winter[lo:hi, None] * winter[None, :]
        block += 1.0
        block *= factors[pop.cls[lo:hi]]
        level = rng.standard_normal((hi - lo, weeks), dtype=np.float32)
        level *= 0.08
        np.exp(level, out=level)
        block *= np.repeat(level, 7, axis=1)[:, :d]
        noise = rng.standard_normal((hi - lo, d), dtype=np.float32)
        sd = pop.noise[lo:hi, None]
        noise *= sd
        noise -= 0.5 * sd * sd
        np.exp(noise, out=noise)
        block *= noise
        block *= pop.base[lo:hi, None]
    return out
