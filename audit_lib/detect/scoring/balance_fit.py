"""The energy-balance estimate of a CT customer's true multiplier (倍率) from its station area.

A wrong recorded multiplier scales every reading of the customer by the same factor, while the
area's transformer meter keeps seeing the physical energy. So the area's daily supply, in
day-to-day changes (the shared seasonal swing cancels), is regressed jointly on each CT
customer's readings and on the sum of the area's other customers::

    Δsupply ≈ Σₖ aₖ · Δxₖ + c · Δrest

With right multipliers ``aₖ ≈ c`` (≈ 1 + loss); a recorded multiplier ``f`` times the physical
one gives ``aₖ ≈ c / f``, and ``aₖ / c`` estimates physical ÷ recorded. Every CT customer of an
area has its own column, so two wrong multipliers in one area do not hide each other. A
customer alone behind its transformer (专变) has no ``rest``: the ratio of the supply to its
readings (less about 1 % transformer loss) gives the factor directly.

A multiplier is fixed from the meter's installation, so the factor must be the same in every
part of the window. The ratio is therefore estimated in ``segments`` consecutive parts and
pooled (inverse-variance mean); when the parts disagree more than their standard errors allow
(Cochran's Q), the pooled standard error is inflated by ``sqrt(Q / (k − 1))``. A theft that starts within the window (the
ratio moves), or a thief elsewhere in the area whose hidden energy loads onto customers of the
same day pattern (the ratio of an honest neighbour moves with the theft), then no longer looks
like a firm multiplier error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit_lib.data.balance import AreaBalance
from audit_lib.detect.context import DetectionContext

ALONE_SHARE = 0.99
DEDICATED_LOSS = 0.01  # a dedicated transformer's own loss, taken off its supply
DEDICATED_SE = 0.005  # ± half a percent: the unknown part of that loss, as a standard error
MIN_CHANGES = 20  # day-to-day changes a segment needs for an estimate
CHUNK_BYTES = 32 * 2**20


@dataclass
class BalanceFit:
    """Per CT customer: the balance's factor physical ÷ recorded and how firm it is.

    Attributes
    ----------
    ratio
        Estimate of physical ÷ recorded multiplier, pooled over the segments (NaN = not
        estimable).
    se
        Standard error of ``log(ratio)``, inflated when the segments disagree.
    z
        ``|log(ratio)| / se``: how many standard errors the factor is away from 1.
    segment_ratio
        (customers, segments) estimates per consecutive part of the window.
    segments
        Segments with an estimate.
    share
        The customer's share of its area's metered kWh.
    alone
        Alone behind its transformer (the level ratio was used).
    """

    ratio: np.ndarray
    se: np.ndarray
    z: np.ndarray
    segment_ratio: np.ndarray
    segments: np.ndarray
    share: np.ndarray
    alone: np.ndarray


def segment_masks(days: int, segments: int) -> np.ndarray:
    """(segments, days) bool: ``segments`` consecutive parts of the window."""
    part = np.arange(days) * segments // max(days, 1)
    return part[None, :] == np.arange(segments)[:, None]


def balance_fit(
    ctx: DetectionContext, balance: AreaBalance, rows: np.ndarray, segments: int = 4
) -> BalanceFit:
    """Estimate physical ÷ recorded multiplier of customers ``rows`` from their areas' balance."""
    area = balance.customer_area[rows]
    x = np.where(ctx.open_mask[rows], ctx.matrix.values[rows], 0.0).astype(np.float64)
    ok = balance.computable[np.maximum(area, 0)] & (area >= 0)[:, None]
    xs = np.where(ok, np.nan_to_num(x), 0.0).sum(1)
    cs = np.where(ok, balance.consumed[np.maximum(area, 0)], 0.0).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(cs > 0, xs / cs, 0.0)
    alone = share >= ALONE_SHARE
    masks = segment_masks(x.shape[1], segments)
    log_r = np.full((len(rows), len(masks)), np.nan)
    se = np.full_like(log_r, np.nan)
    if alone.any():
        log_r[alone], se[alone] = level_ratio(
            x[alone], balance.supply[area[alone]], ok[alone], masks
        )
    public = ~alone & (area >= 0)
    if public.any():
        log_r[public], se[public] = joint_ratio(
            x[public], area[public], balance.supply, balance.consumed, balance.computable, masks
        )
    pooled, pooled_se = pool(log_r, se)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.abs(pooled) / pooled_se
    seg_ok = np.isfinite(log_r) & np.isfinite(se)
    return BalanceFit(np.exp(pooled), pooled_se, z, np.exp(log_r), seg_ok.sum(1), share, alone)


def level_ratio(
    x: np.ndarray, supply: np.ndarray, ok: np.ndarray, masks: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """log(Σ supply ÷ Σ readings ÷ (1 + loss)) and its standard error, per customer and mask.

    For customers alone behind their transformer; the standard error is the spread of the daily
    log ratios over √days, but never below :data:`DEDICATED_SE`.
    """
    good = ok & ~np.isnan(x) & (x > 0) & ~np.isnan(supply) & (supply > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        daily = np.where(good, np.log(np.where(good, supply, 1.0) / np.where(good, x, 1.0)), 0.0)
    log_r = np.full((len(x), len(masks)), np.nan)
    se = np.full_like(log_r, np.nan)
    for s, mask in enumerate(masks):  # a handful of masks, vectorised over customers
        m = good & mask[None, :]
        n = m.sum(1)
        enough = n >= MIN_CHANGES
        with np.errstate(invalid="ignore", divide="ignore"):
            level = np.where(m, supply, 0.0).sum(1) / np.where(m, x, 0.0).sum(1)
            mean = np.where(m, daily, 0.0).sum(1) / n
            spread = np.sqrt(np.where(m, (daily - mean[:, None]) ** 2, 0.0).sum(1) / n / n)
            log_r[:, s] = np.where(enough, np.log(level / (1 + DEDICATED_LOSS)), np.nan)
        se[:, s] = np.where(enough, np.maximum(np.nan_to_num(spread), DEDICATED_SE), np.nan)
    return log_r, se


def joint_ratio(
    x: np.ndarray,
    area: np.ndarray,
    supply: np.ndarray,
    consumed: np.ndarray,
    computable: np.ndarray,
    masks: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """log(aₖ / c) of the joint change regression and its standard error, per customer and mask
    (a change counts in a mask when both its days do).

    Areas are solved in batches of similar size (padded to the largest count of CT customers
    in the batch), so the work is a few batched matrix products, not a loop over customers.
    """
    n, d = x.shape
    log_r = np.full((n, len(masks)), np.nan)
    se = np.full_like(log_r, np.nan)
    uniq, inverse, counts = np.unique(area, return_inverse=True, return_counts=True)
    by_size = np.argsort(counts, kind="stable")
    start = 0
    while start < len(uniq):
        stop = min(start + _batch(counts[by_size[start]], d), len(uniq))
        stop = start + max(1, min(stop - start, _batch(counts[by_size[stop - 1]], d)))
        pos = np.full(len(uniq), -1)
        pos[by_size[start:stop]] = np.arange(stop - start)
        members = np.flatnonzero(pos[inverse] >= 0)
        log_r[members], se[members] = _solve_areas(
            x[members], pos[inverse[members]], uniq[by_size[start:stop]],
            supply, consumed, computable, masks,
        )  # fmt: skip
        start = stop
    return log_r, se


def _solve_areas(
    x: np.ndarray,
    g: np.ndarray,
    areas: np.ndarray,
    supply: np.ndarray,
    consumed: np.ndarray,
    computable: np.ndarray,
    masks: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The joint regression of a batch of areas; ``g`` is each customer's area in the batch."""
    n_g, d = len(areas), x.shape[1]
    slot = _slots(g)
    k = int(slot.max()) + 1
    design = np.zeros((n_g, k + 1, d))
    design[g, slot] = np.nan_to_num(x)
    design[:, k] = consumed[areas] - design[:, :k].sum(1)
    missing = np.zeros((n_g, d), dtype=bool)
    np.logical_or.at(missing, g, np.isnan(x))
    ok = computable[areas] & ~missing
    ok = ok[:, 1:] & ok[:, :-1]
    dx = np.diff(design, axis=2)
    dy = np.where(ok, np.diff(np.nan_to_num(supply[areas]), axis=1), 0.0)
    used = np.zeros((n_g, k + 1), dtype=bool)
    used[g, slot] = True
    used[:, k] = True
    log_r = np.full((len(x), len(masks)), np.nan)
    se = np.full_like(log_r, np.nan)
    for s, mask in enumerate(masks):  # a few segments
        m = ok & (mask[1:] & mask[:-1])[None, :]
        xm = dx * m[:, None, :]
        gram = xm @ dx.transpose(0, 2, 1)
        xy = (xm @ dy[:, :, None])[..., 0]
        scale = np.maximum(np.einsum("gii->gi", gram).max(1, keepdims=True), 1e-12)
        gram += np.eye(k + 1)[None] * np.where(used, 1e-10, 1.0)[:, None, :] * scale[:, :, None]
        inv = np.linalg.inv(gram)
        beta = (inv @ xy[:, :, None])[..., 0]
        dof = m.sum(1) - used.sum(1)
        rss = np.maximum((np.where(m, dy, 0.0) ** 2).sum(1) - (beta * xy).sum(1), 0.0)
        sigma2 = rss / np.maximum(dof, 1)
        a, c = beta[g, slot], beta[g, k]
        va, vc, cov = (sigma2[g] * inv[g, i, j] for i, j in ((slot, slot), (k, k), (slot, k)))
        with np.errstate(invalid="ignore", divide="ignore"):
            var = va / a**2 + vc / c**2 - 2 * cov / (a * c)
            good = (a > 0) & (c > 0) & (dof[g] >= MIN_CHANGES) & (var > 0)
            log_r[:, s] = np.where(good, np.log(np.where(good, a / c, 1.0)), np.nan)
        se[:, s] = np.where(good, np.sqrt(np.where(good, var, 0.0)), np.nan)
    return log_r, se


def _batch(customers_per_area: int, days: int) -> int:
    """Areas per batch so that the design arrays stay near :data:`CHUNK_BYTES`."""
    return max(1, CHUNK_BYTES // (8 * days * (int(customers_per_area) + 1) * 3))


def _slots(g: np.ndarray) -> np.ndarray:
    """Position of each customer among the customers of its area (0, 1, … per area)."""
    order = np.argsort(g, kind="stable")
    sorted_g = g[order]
    first = np.searchsorted(sorted_g, sorted_g, side="left")
    slot = np.empty(len(g), dtype=np.int64)
    slot[order] = np.arange(len(g)) - first
    return slot


def pool(log_r: np.ndarray, se: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse-variance mean of the segment estimates and its standard error, inflated by
    √max(1, Q/(k−1)) when the segments disagree beyond their errors (Cochran's Q).

    Rows with no estimate give NaN; with one, that estimate and its own error.
    """
    ok = np.isfinite(log_r) & np.isfinite(se) & (se > 0)
    w = np.where(ok, 1.0 / np.where(ok, se, 1.0) ** 2, 0.0)
    values = np.where(ok, log_r, 0.0)
    total = w.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(total > 0, (w * values).sum(1) / total, np.nan)
        q = (w * (values - np.nan_to_num(mean)[:, None]) ** 2).sum(1)
        k = ok.sum(1)
        inflation = np.sqrt(np.maximum(1.0, np.where(k >= 2, q / np.maximum(k - 1, 1), 1.0)))
        return mean, np.where(total > 0, inflation / np.sqrt(total), np.nan)
