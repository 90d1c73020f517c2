"""Findings frames: identity, columns and ordering."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from audit_lib.data.schema import FINDINGS
from audit_lib.detect.findings import make_findings
from audit_lib.themes.catalogue import CATALOGUE, get_theme, theme_versions


def _hits() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "entity": ["1001", "1002"],
            "score": [0.2, 0.9],
            "reason_zh": ["零电量30天", "零电量60天"],
            "reason_en": ["zero for 30 days", "zero for 60 days"],
            "evidence": [{"zero_days": 30}, {"zero_days": 60, "day": date(2025, 3, 1)}],
            "kwh_at_risk": [300.0, 600.0],
        }
    )


def test_make_findings_has_the_findings_columns_sorted_by_score() -> None:
    theme = get_theme("zero_consumption")
    out = make_findings(
        theme, _hits(), bureau="YZ", period_start=date(2025, 1, 1), period_end=date(2025, 3, 31)
    )
    assert list(out.columns) == FINDINGS.names
    assert out["entity"].tolist() == ["1002", "1001"]
    assert json.loads(out.loc[0, "evidence"]) == {"zero_days": 60, "day": "2025-03-01"}
    assert (out["theme_version"] == theme.version).all()


def test_make_findings_ids_are_deterministic_and_period_specific() -> None:
    theme = get_theme("zero_consumption")
    kw = {"bureau": "YZ", "period_start": date(2025, 1, 1)}
    a = make_findings(theme, _hits(), period_end=date(2025, 3, 31), **kw)
    b = make_findings(theme, _hits(), period_end=date(2025, 3, 31), **kw)
    c = make_findings(theme, _hits(), period_end=date(2025, 4, 30), **kw)
    assert a["finding_id"].tolist() == b["finding_id"].tolist()
    assert set(a["finding_id"]).isdisjoint(c["finding_id"])


def test_make_findings_rejects_hits_without_reasons() -> None:
    with pytest.raises(ValueError, match="reason_zh"):
        make_findings(
            get_theme("arrears"),
            _hits().drop(columns="reason_zh"),
            bureau="YZ",
            period_start=date(2025, 1, 1),
            period_end=date(2025, 1, 31),
        )


def test_catalogue_names_and_versions() -> None:
    assert all(t.name_zh and t.name_en for t in CATALOGUE.values())
    assert theme_versions(["arrears"]) == {"arrears": 1}
    with pytest.raises(KeyError, match="known"):
        get_theme("no_such_theme")
