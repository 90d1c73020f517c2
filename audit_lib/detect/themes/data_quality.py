"""The data-quality theme (数据质量): every check of :mod:`audit_lib.data.quality` over the
bureau, the hits that concern the period, one finding per entity."""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit_lib.data import quality
from audit_lib.data.quality_matrix import BuiltMatrix
from audit_lib.detect.context import DetectionContext
from audit_lib.detect.findings import evidence_column
from audit_lib.themes.catalogue import Theme


def detect_data_quality(ctx: DetectionContext, theme: Theme) -> pd.DataFrame:
    """Every data-quality check of :mod:`audit_lib.data.quality`, one finding per entity
    listing the checks it fails (数据质量), from the hits that touch the period: a fault
    wholly before it (an earlier month's bill, a gap or orphan rows that ended before it)
    belongs to an earlier run."""
    built = BuiltMatrix(ctx.bureau, ctx.matrix, ctx.customers)  # no second matrix build
    hits = quality.run_checks(
        ctx.mart,
        ctx.bureau,
        built=built,
        min_missing_days=theme.param("min_missing_days"),
        min_missing_supply_days=theme.param("min_missing_supply_days"),
    )
    if hits.empty:
        return pd.DataFrame()
    hits = quality.hits_in_period(hits, ctx.start, ctx.end)
    if hits.empty:
        return pd.DataFrame()
    out = _per_entity(hits)
    cust = ctx.customers.set_index("cons_no")
    out["station_id"] = out["entity"].map(cust["station_id"])
    out["area_id"] = out["entity"].map(cust["area_id"])
    out["score"] = out["checks"].map(len) + np.log1p(out["count"]) / 10
    out["reason_zh"] = "数据质量问题：" + out["zh"] + "（" + out["count"].astype(str) + "处）"
    out["reason_en"] = "data quality: " + out["en"] + " (" + out["count"].astype(str) + " rows)"
    out["evidence"] = evidence_column(
        [
            {"checks": c, "rows": int(n), "example": d}
            for c, n, d in zip(out["checks"], out["count"], out["detail"], strict=True)
        ]
    )
    return out


def _per_entity(hits: pd.DataFrame) -> pd.DataFrame:
    """One row per entity (sorted; hits without one left out): the sorted names of the checks
    it fails (``checks``), their Chinese and English names each sorted and joined (``zh``,
    ``en``), its number of hits (``count``) and the first hit's ``detail``.

    The set of checks an entity fails is one bit per check summed over its distinct checks,
    so the names are made once per set met, not once per entity.
    """
    names = list(quality.CHECKS)
    bit = pd.Series(1 << np.arange(len(names), dtype=np.int64), index=names)
    distinct = hits.drop_duplicates(["entity", "check"])
    masks = distinct.assign(bit=distinct["check"].map(bit)).groupby("entity", sort=True)["bit"]
    grouped = hits.groupby("entity", sort=True)
    out = pd.DataFrame(
        {"mask": masks.sum(), "count": grouped.size(), "detail": grouped["detail"].first()}
    )
    labels = {c.name: (c.name_zh, c.name_en) for c in quality.CHECKS.values()}
    sets = {
        int(m): sorted(n for i, n in enumerate(names) if int(m) >> i & 1)
        for m in out["mask"].unique()
    }
    zh = {m: "、".join(sorted({labels[c][0] for c in cs})) for m, cs in sets.items()}
    en = {m: ", ".join(sorted({labels[c][1] for c in cs})) for m, cs in sets.items()}
    mask = out.pop("mask").astype(int)
    checks = pd.Series([list(sets[m]) for m in mask], index=out.index, dtype=object)
    return out.assign(checks=checks, zh=mask.map(zh), en=mask.map(en)).reset_index()[
        ["entity", "checks", "zh", "en", "count", "detail"]
    ]
