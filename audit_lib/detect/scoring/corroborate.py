"""Corroborating evidence for theft suspects (窃电佐证): meter alarms at the drop, zero runs.

The shape score (:mod:`audit_lib.detect.scoring.theft`) reads consumption alone. Around it, the
theft theme uses what else the utility knows about a customer:

- **exact-zero runs** of at least the zero-consumption theme's length are that theme's
  evidence (运行户零电量: a stopped, bypassed or mis-recorded meter has its own task). The
  theft score reads the shape of what the meter still records, so those days count as not
  collected (:func:`mask_zero_runs`) and the customer is not listed twice;
- **terminal alarms at the drop**: a cover-opened (ERC37) or meter-stopped (ERC30) alarm
  within a few days of the customer's consumption step is the classic corroboration of a
  tampered meter (:func:`alarms_at_drop`). It multiplies the odds of the shape score by a
  fixed factor (:data:`ALARM_ODDS`): :func:`combine` works on the surprisal of the rank. An
  alarm on the day a replacement meter was fitted is the fitter's (the work order opened the
  cover) and does not count (:func:`at_fitting`).

Everything is vectorised over customers; the step day is found only for the candidates.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import pandas as pd

from audit_lib.data.meters import later_meters
from audit_lib.detect.kernels.rowstats import split_scan, weekly_means

TAMPER_CODES = ("ERC37", "ERC30")  # cover opened, meter stopped
ALARM_WINDOW_DAYS = 14  # an alarm this close to the step counts as "at the drop"
ALARM_ODDS = 3.0  # odds factor of an alarm at the drop (no measurable effect on dev seeds)
FITTING_DAYS = 1  # an alarm this close to a replacement meter's installation is the fitter's
MASK_ROWS = 65_536  # rows per block of mask_zero_runs (one thread per core)


def mask_zero_runs(
    values: np.ndarray, min_days: int, open_mask: np.ndarray | None = None
) -> np.ndarray:
    """Copy of ``values`` (float32) with every run of ≥ ``min_days`` exact-zero days set to
    NaN, and the days outside ``open_mask`` (account not open) too.

    Missing days (NaN) inside a run neither break nor lengthen it. One compiled pass per row,
    blocks of rows in one thread per core.
    """
    x = np.ascontiguousarray(values, dtype=np.float32)
    use_open = open_mask is not None
    opened = np.ascontiguousarray(open_mask) if use_open else np.ones((1, 1), dtype=np.bool_)
    out = np.empty_like(x)

    def block(lo: int) -> None:
        hi = min(lo + MASK_ROWS, len(x))
        _mask_zero_runs(x[lo:hi], opened[lo:hi] if use_open else opened, use_open, min_days,
                        out[lo:hi])  # fmt: skip

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(block, range(0, len(x), MASK_ROWS)))
    return out


@numba.njit(cache=True, nogil=True)
def _mask_zero_runs(
    x: np.ndarray, opened: np.ndarray, use_open: bool, min_days: int, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    n, d = x.shape
    for i in range(n):
        run_start, run_len = -1, 0
        for t in range(d + 1):
            v = np.float32(np.nan)
            if t < d:
                v = x[i, t] if (not use_open or opened[i, t]) else np.float32(np.nan)
                out[i, t] = v
            if t < d and v == 0.0:
                if run_len == 0:
                    run_start = t
                run_len += 1
            elif t == d or v > 0.0:  # a positive day (or the end) closes the run
                if run_len >= min_days:
                    for u in range(run_start, t):
                        out[i, u] = np.float32(np.nan)
                run_len = 0


def step_columns(values: np.ndarray) -> np.ndarray:
    """Column of each row's most negative mean shift (weekly means scan), −1 if none."""
    days = values.shape[1]
    t_min, _, pos_min, *_ = split_scan(weekly_means(values), min_seg=2)
    weeks = -(-days // 7)
    col = np.round(np.nan_to_num(pos_min, nan=-1.0) * weeks) * 7
    return np.where(np.isfinite(t_min), np.clip(col, 0, days - 1), -1).astype(np.int64)


def at_fitting(events: pd.DataFrame, meters: pd.DataFrame, days: int = FITTING_DAYS) -> np.ndarray:
    """Which ``events`` lie within ``days`` of the installation of a replacement meter of the
    same customer (a meter installed after the customer's first): the fitter's, not a tamper.

    Parameters
    ----------
    events
        Meter events with ``cons_no`` and ``time``.
    meters
        The meter table (``cons_no``, ``install_date``).
    """
    fitted = later_meters(meters)[["cons_no", "install_date"]]
    out = np.zeros(len(events), dtype=bool)
    if fitted.empty or events.empty:
        return out
    numbered = pd.DataFrame({"cons_no": events["cons_no"].to_numpy(), "at": np.arange(len(events)),
                             "time": pd.DatetimeIndex(events["time"]).normalize()})  # fmt: skip
    pairs = numbered.merge(fitted, on="cons_no")  # replacements are few: a small join
    gap = (pairs["time"] - pd.to_datetime(pairs["install_date"])).dt.days.abs()
    out[pairs.loc[gap <= days, "at"].to_numpy()] = True
    return out


def alarms_at_drop(
    events: pd.DataFrame,
    cons_no: np.ndarray,
    dates: pd.DatetimeIndex,
    step_col: np.ndarray,
    window: int = ALARM_WINDOW_DAYS,
) -> tuple[np.ndarray, np.ndarray]:
    """Which customers have a tamper alarm within ``window`` days of their step.

    Parameters
    ----------
    events
        Meter events with ``cons_no``, ``time`` and ``code``.
    cons_no
        The candidates, in the order of ``step_col``.
    dates
        Days of the matrix columns.
    step_col
        Step column per candidate (−1 = none).

    Returns
    -------
    (at_drop, codes)
        Boolean per candidate, and the alarm codes seen at the drop (``""`` if none).
    """
    tamper = events[events["code"].isin(TAMPER_CODES)]
    who = pd.Index(cons_no).get_indexer(tamper["cons_no"])
    day = dates.get_indexer(pd.DatetimeIndex(tamper["time"]).normalize())
    ok = (who >= 0) & (day >= 0)
    who, day, code = who[ok], day[ok], tamper["code"].to_numpy()[ok]
    near = (step_col[who] >= 0) & (np.abs(day - step_col[who]) <= window)
    at_drop = np.zeros(len(cons_no), dtype=bool)
    at_drop[who[near]] = True
    codes = (
        pd.Series(code[near], index=who[near])
        .groupby(level=0)
        .agg(lambda s: ",".join(sorted(set(s))))
    )
    out = np.full(len(cons_no), "", dtype=object)
    out[codes.index.to_numpy()] = codes.to_numpy()
    return at_drop, out


def combine(score: np.ndarray, at_drop: np.ndarray, odds: float = ALARM_ODDS) -> np.ndarray:
    """Shape score combined with alarm evidence, as a 0..1 rank (higher = more suspicious).

    The shape score is turned into its rank share ``r`` among the scored customers; its
    surprisal −log(1 − r + ½/n) grows by log(``odds``) for customers with an alarm at the
    drop, and the result is ranked again. Customers without a score stay NaN.
    """
    ok = np.isfinite(score)
    n = max(int(ok.sum()), 1)
    rank = pd.Series(score[ok]).rank(method="average").to_numpy() / n
    surprisal = -np.log(1.0 - rank + 0.5 / n) + np.where(at_drop[ok], np.log(odds), 0.0)
    out = np.full(len(score), np.nan)
    out[ok] = pd.Series(surprisal).rank(method="average").to_numpy() / n
    return out
