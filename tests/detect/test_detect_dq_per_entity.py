"""The data-quality theme's per-entity summary equals a groupby with Python aggregates."""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit_lib.data import quality
from audit_lib.detect.themes.data_quality import _per_entity


def _by_lambdas(hits: pd.DataFrame) -> pd.DataFrame:
    names = {c.name: (c.name_zh, c.name_en) for c in quality.CHECKS.values()}
    hits = hits.assign(
        zh=hits["check"].map(lambda c: names[c][0]), en=hits["check"].map(lambda c: names[c][1])
    )
    return (
        hits.groupby("entity", sort=True)
        .agg(
            checks=("check", lambda s: sorted(set(s))),
            zh=("zh", lambda s: "、".join(sorted(set(s)))),
            en=("en", lambda s: ", ".join(sorted(set(s)))),
            count=("check", "size"),
            detail=("detail", "first"),
        )
        .reset_index()
    )


def test_per_entity_equals_the_lambdas() -> None:
    rng = np.random.default_rng(4)
    n = 3_000
    entity = rng.choice([f"C{i:04d}" for i in range(1500)] + [None], n)
    hits = pd.DataFrame(
        {
            "entity": pd.array(entity, dtype="string"),
            "check": rng.choice(list(quality.CHECKS), n),
            "detail": [f"row {i}" if i % 7 else None for i in range(n)],
        }
    )
    got = _per_entity(hits)
    want = _by_lambdas(hits)
    sizes = got["checks"].map(len)
    assert sizes.min() == 1 and sizes.max() >= 4 and len(got) == hits["entity"].nunique()
    pd.testing.assert_frame_equal(got, want)
