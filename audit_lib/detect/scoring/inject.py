"""Published theft patterns, injected into copies of real consumption (self-supervision).

After Jokar, Arianpoo & Leung (2016), *Electricity Theft Detection in AMI Using Customers'
Consumption Patterns*, IEEE Trans. Smart Grid 7(1): a thief's meter shows a manipulated
version of the true consumption. Each kind below turns a daily series ``x`` into what the
meter would record from a start day on (before it, the copy equals the original):

==================  =========================================================
kind                recorded consumption from the start day
==================  =========================================================
constant_fraction   ``a · x`` with one ``a`` per copy (Jokar h1)
random_fraction     ``a_t · x`` with a fresh ``a_t`` every day (Jokar h3)
onoff_bypass        ``0`` on random days, ``x`` on the others (Jokar h2, daily)
flattened           ``a · mean(x)`` — a flat line (Jokar h5 / h6)
capped              ``min(x, c)`` with ``c`` a low quantile of the customer (capping)
zeroed_period       ``0`` for a contiguous period, then ``x`` again
==================  =========================================================

Everything is vectorised over copies: a copy's pattern is a row of a multiplier / cap /
replacement matrix, there is no loop over customers.
"""

from __future__ import annotations

import numpy as np

KINDS: tuple[str, ...] = (
    "constant_fraction",
    "random_fraction",
    "onoff_bypass",
    "flattened",
    "capped",
    "zeroed_period",
)


def inject_theft(
    values: np.ndarray,
    rng: np.random.Generator,
    *,
    kinds: tuple[str, ...] = KINDS,
    min_start: float = 0.15,
    max_start: float = 0.85,
    from_first_day: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Return a theft-injected copy of every row of ``values`` and the kind of each copy.

    Parameters
    ----------
    values
        Customers × days kWh (NaN = missing; NaN stays NaN in the copy).
    rng
        Random generator (the caller owns the seed).
    kinds
        Kinds to draw from, uniformly.
    min_start, max_start
        Range of the start day as a share of the days.
    from_first_day
        Share of copies whose theft runs from day 0 (a thief since before the data began).

    Returns
    -------
    (copies, kind_index)
        ``copies`` has the shape of ``values`` (float32); ``kind_index[i]`` indexes ``kinds``.
    """
    x = np.asarray(values, dtype=np.float32)
    n, days = x.shape
    kind = rng.integers(0, len(kinds), size=n)
    start = (rng.uniform(min_start, max_start, size=n) * days).astype(np.int64)
    start[rng.random(n) < from_first_day] = 0
    day = np.arange(days)[None, :]
    active = day >= start[:, None]
    names = np.asarray(kinds)[kind]
    out = x.copy()

    def rows(name: str) -> np.ndarray:
        return np.asarray(names == name)

    # constant fraction: one factor per copy
    sel = rows("constant_fraction")
    a = rng.uniform(0.1, 0.7, size=(n, 1)).astype(np.float32)
    out = np.where(sel[:, None] & active, x * a, out)
    # random daily fraction
    sel = rows("random_fraction")
    lo = rng.uniform(0.05, 0.5, size=(n, 1))
    a_t = (lo + rng.random((n, days)) * (1.0 - lo)).astype(np.float32)
    out = np.where(sel[:, None] & active, x * a_t, out)
    # on/off bypass on random days
    sel = rows("onoff_bypass")
    p_off = rng.uniform(0.2, 0.7, size=(n, 1))
    off = rng.random((n, days)) < p_off
    out = np.where(sel[:, None] & active & off, np.float32(0.0), out)
    # flattened: a flat line at a fraction of the customer's mean after the start
    sel = rows("flattened")
    after = np.where(sel[:, None] & active, x, np.nan)
    n_after = np.sum(~np.isnan(after), axis=1, keepdims=True)
    mean_after = np.nansum(after, axis=1, keepdims=True) / np.maximum(n_after, 1)
    level = (np.nan_to_num(mean_after) * rng.uniform(0.3, 1.0, size=(n, 1))).astype(np.float32)
    jitter = (1.0 + 0.03 * rng.standard_normal((n, days))).astype(np.float32)
    out = np.where(sel[:, None] & active & ~np.isnan(x), level * jitter, out)
    # capped at a low quantile of the customer's own readings
    sel = rows("capped")
    q = rng.uniform(0.2, 0.6, size=n)
    srt = np.sort(np.where(sel[:, None], x, np.nan), axis=1)
    n_obs = np.sum(~np.isnan(srt), axis=1)
    idx = np.clip((q * np.maximum(n_obs - 1, 0)).astype(np.int64), 0, days - 1)
    cap = srt[np.arange(n), idx][:, None]
    out = np.where(sel[:, None] & active, np.minimum(x, cap), out)
    # zeroed period of 7..90 days
    sel = rows("zeroed_period")
    length = rng.integers(7, 91, size=(n, 1))
    zero = active & (day < start[:, None] + length)
    out = np.where(sel[:, None] & zero & ~np.isnan(x), np.float32(0.0), out)
    return out.astype(np.float32), np.asarray(kind)


def inject_absence(
    values: np.ndarray,
    rng: np.random.Generator,
    *,
    min_days: int = 21,
    max_days: int = 120,
    open_share: float = 0.5,
) -> np.ndarray:
    """Return a copy of every row with a legitimate absence (房屋空置 / trip) injected.

    The negatives of the self-supervision: for a stretch of ``min_days``..``max_days`` days
    the customer draws only standby power (1–25 % of its mean level, with day-to-day noise).
    Thieves rarely go back to recording everything by themselves after a few weeks; an empty
    dwelling does, so most copies then return to their own consumption. A share
    ``open_share`` of the stretches instead runs to the last day: a vacancy still going on
    when the data ends (a monitoring run always looks at the latest days) has not come back
    yet, and must not look like theft either. Teaching the classifier that such copies are
    *not* theft keeps vacancies and long trips out of the top of the ranking.

    Parameters
    ----------
    values
        Customers × days kWh (NaN = missing; NaN stays NaN in the copy).
    rng
        Random generator (the caller owns the seed).
    min_days, max_days
        Range of the absence length (at most 60 % of the days).
    open_share
        Share of the copies whose absence lasts to the last day.
    """
    x = np.asarray(values, dtype=np.float32)
    n, days = x.shape
    length = rng.integers(min(min_days, days // 3), max(min(max_days, int(0.6 * days)), 2), size=n)
    start = (rng.uniform(0.0, 1.0, size=n) * np.maximum(days - length, 1)).astype(np.int64)
    start = np.where(rng.random(n) < open_share, np.maximum(days - length, 0), start)
    day = np.arange(days)[None, :]
    away = (day >= start[:, None]) & (day < (start + length)[:, None])
    with np.errstate(invalid="ignore"):
        level = np.nanmean(np.where(np.isnan(x), np.nan, x), axis=1, keepdims=True)
    standby = np.nan_to_num(level) * rng.uniform(0.01, 0.25, size=(n, 1))
    noisy = standby * rng.lognormal(0.0, rng.uniform(0.1, 0.5, size=(n, 1)), size=(n, days))
    return np.where(away & ~np.isnan(x), noisy.astype(np.float32), x).astype(np.float32)
