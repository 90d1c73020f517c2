"""The theft-suspicion theme (窃电嫌疑): the theft score of :mod:`audit_lib.detect.scoring.theft` over
the bureau's matrix, corroborated by terminal alarms at the drop
(:mod:`audit_lib.detect.scoring.corroborate`); long exact-zero runs are left to the zero-consumption
theme."""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit_lib.data.matrix import ConsumptionMatrix
from audit_lib.detect.context import DetectionContext
from audit_lib.detect.findings import evidence_column
from audit_lib.detect.kernels.matrix_ops import by_threads, nanmean_rows
from audit_lib.detect.scoring import corroborate
from audit_lib.detect.scoring.replacement import explained_days
from audit_lib.detect.scoring.theft import score_matrix
from audit_lib.themes.catalogue import Theme

OTHER_ALARMS = ("ERC28", "ERC29")  # over tolerance, meter fast: shown, not scored


def theft_scores(ctx: DetectionContext) -> pd.DataFrame:
    """Corroborated theft score of every active, scorable customer of the context.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`~audit_lib.detect.scoring.theft.score_matrix` (``score`` now
        corroborated, ``rank`` re-numbered), plus ``shape_score`` (consumption alone),
        ``step_date`` and ``alarms_at_drop`` (codes, ``""`` if none); most suspicious first.
    """
    return scored_rows(ctx)[0]


def scored_rows(
    ctx: DetectionContext, dated: float | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`theft_scores` and, per row of it, the customer's row in the context.

    The step day is found for the customers with a tamper alarm (the corroboration needs it)
    and for the :func:`top_count` first rows of the result at share ``dated`` (all rows when
    ``None``); ``step_date`` is ``""`` for the others.
    """
    zero_days = int(ctx.theme("zero_consumption").param("min_zero_days"))
    masked = (zero_days, ctx.open_mask)  # exact-zero runs are the zero theme's, not theft
    active = (ctx.customers["status"] == "active").to_numpy()
    events = ctx.loaded_meter_events  # a drop before the period has its alarm there
    events = events[~corroborate.at_fitting(events, ctx.meters)]
    tamper = events.loc[events["code"].isin(corroborate.TAMPER_CODES), "cons_no"]
    alarmed = np.flatnonzero(active & ctx.customers["cons_no"].isin(tamper).to_numpy())
    steps = np.full(len(ctx.customers), -1, dtype=np.int64)
    steps[alarmed] = step_columns(ctx.matrix.values, alarmed, masked)
    scored = score_matrix(
        ctx.matrix.values,
        ctx.customers["cons_no"].to_numpy(),
        ctx.class_codes,
        first_weekday=int(ctx.matrix.dates[0].weekday()),
        source=f"bureau {ctx.bureau}",
        dates=ctx.matrix.dates,
        with_rows=True,
        zero_runs=masked,  # its own masked copy, freed before the models fit (1.5 GB at 10⁶)
        absurd_counts=absurd_counts(ctx.matrix),
        explained=explained_days(ctx),  # a multiplier changed at a replacement: not theft
    )
    rows = scored.pop("row").to_numpy()
    keep = (scored["status"] == "scored").to_numpy() & active[rows]
    scored, rows = scored[keep], rows[keep]
    at_drop, codes = corroborate.alarms_at_drop(
        events, scored["cons_no"].to_numpy(), ctx.matrix.dates, steps[rows]
    )
    shape = scored["score"].to_numpy(dtype=float)
    out = scored.assign(
        shape_score=shape,
        score=corroborate.combine(shape, at_drop),
        alarms_at_drop=codes,
        context_row=rows,
    )
    out = out.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    rows = out.pop("context_row").to_numpy()
    dated_rows = rows if dated is None else rows[: top_count(dated, len(rows))]
    pending = dated_rows[~np.isin(dated_rows, alarmed)]
    if len(pending):  # the score's view of these rows, masked block by block
        steps[pending] = step_columns(ctx.matrix.values, pending, masked)
    step = np.full(len(rows), -1, dtype=np.int64)
    step[: len(dated_rows)] = steps[dated_rows]
    labels = day_labels(ctx.matrix.dates)[np.maximum(step, 0)]
    out.insert(out.columns.get_loc("alarms_at_drop"), "step_date", np.where(step >= 0, labels, ""))
    return out, rows


def absurd_counts(matrix: ConsumptionMatrix) -> np.ndarray:
    """Absurd days per row that the matrix's build cleared (zeros when none were looked for)."""
    cells = np.zeros(0, np.int64) if matrix.absurd is None else matrix.absurd[0]
    return np.bincount(cells // matrix.shape[1], minlength=matrix.shape[0])


def top_count(share: float, n: int) -> int:
    """Rows in the top ``share`` of ``n`` scored customers (at least one)."""
    return max(1, int(np.ceil(share * n)))


def day_labels(dates: pd.DatetimeIndex) -> np.ndarray:
    """``YYYY-MM-DD`` of each column (formatted once per day, not once per customer)."""
    return np.asarray(dates.strftime("%Y-%m-%d").to_numpy(), dtype=object)


def step_columns(
    values: np.ndarray, rows: np.ndarray, mask: tuple[int, np.ndarray] | None = None
) -> np.ndarray:
    """:func:`~audit_lib.detect.scoring.corroborate.step_columns` of the given rows, in their order,
    chunk by chunk in one thread per core: no copy of all the rows at once. ``mask``
    (zero-run days, open days) applies :func:`~audit_lib.detect.scoring.corroborate.mask_zero_runs`
    to each chunk first."""
    if not len(rows):
        return np.zeros(0, dtype=np.int64)

    def chunk(part: slice) -> tuple[np.ndarray]:
        pick = rows[part]
        block = values[pick]  # a copy: masked below without touching the context's matrix
        if mask is not None:
            block = corroborate.mask_zero_runs(block, mask[0], mask[1][pick])
        return (corroborate.step_columns(block),)

    return by_threads(len(rows), chunk)[0]


def detect_theft_suspicion(ctx: DetectionContext, theme: Theme) -> pd.DataFrame:
    """The top ``top_share`` of customers by corroborated theft score, with evidence."""
    scored, context_rows = scored_rows(ctx, dated=theme.param("top_share"))
    ctx.extras["theft_scores"] = scored[["cons_no", "score", "rank", "shape_score"]]
    k = top_count(theme.param("top_share"), len(scored))
    top = scored.head(k)
    rows = context_rows[:k][(top["score"] >= theme.param("min_score")).to_numpy()]
    top = top[top["score"] >= theme.param("min_score")]
    if top.empty:
        return pd.DataFrame()
    cust = ctx.customers.iloc[rows]
    events = ctx.meter_events
    events = events[
        events["code"].isin(OTHER_ALARMS + corroborate.TAMPER_CODES)
        & events["cons_no"].isin(top["cons_no"])
    ]
    alarms = events.groupby("cons_no")["code"].agg(lambda s: ",".join(sorted(set(s))))
    out = pd.DataFrame(
        {
            "entity": top["cons_no"].to_numpy(),
            "station_id": cust["station_id"].to_numpy(),
            "area_id": cust["area_id"].to_numpy(),
            "score": top["score"].to_numpy(),
        }
    )
    alarm = out["entity"].map(alarms).astype(object).fillna("")  # no alarms at all: not float
    at_drop = top["alarms_at_drop"].to_numpy()
    step = pd.Series(top["step_date"].astype(str).to_numpy())
    zh = np.where(at_drop != "", "；电量下降时(" + step + ")终端告警" + at_drop,
                  np.where(alarm != "", "；终端告警" + alarm, ""))  # fmt: skip
    en = np.where(at_drop != "", "; alarm " + at_drop + " at the drop (" + step + ")",
                  np.where(alarm != "", "; alarms " + alarm, ""))  # fmt: skip
    out["reason_zh"] = top["reason_zh"].to_numpy() + zh
    out["reason_en"] = top["reason_en"].to_numpy() + en
    recent = ctx.matrix.values[rows][:, -90:]
    history = ctx.matrix.values[rows][:, :-90]
    gap = np.nan_to_num(nanmean_rows(history) - nanmean_rows(recent))
    out["kwh_at_risk"] = np.maximum(gap, 0.0) * 90
    out["money_at_risk"] = out["kwh_at_risk"] * ctx.prices.iloc[rows].to_numpy()
    out["evidence"] = evidence_column(
        [
            {
                "score": float(s),
                "shape_score": float(h),
                "rank": int(r),
                "step_date": str(d),
                "alarms_at_drop": a,
                "alarms": o,
            }
            for s, h, r, d, a, o in zip(
                top["score"],
                top["shape_score"],
                top["rank"],
                top["step_date"],
                at_drop,
                alarm,
                strict=True,
            )
        ]
    )
    return out
