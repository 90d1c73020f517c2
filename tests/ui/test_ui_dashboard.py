"""DashboardApp and the loop numbers on a real database and the tiny mart."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker
from tasks_fixtures import LOOP_TO_ARCHIVE, drive
from ui_fixtures import build_database, build_mart, submitted_ids

from audit_lib.data.access import Mart
from audit_lib.kpi.business import business_indicators
from audit_lib.kpi.loop import loop_numbers
from audit_lib.ui.apps.dashboard import DashboardApp


@pytest.fixture
def factory(tmp_path: Path) -> sessionmaker[Session]:
    factory = build_database(
        f"sqlite:///{tmp_path}/audit.db", np.random.default_rng(5), submitted=0
    )
    drive(factory, submitted_ids(factory, 1)[0], LOOP_TO_ARCHIVE)
    return factory


def test_loop_numbers_per_bureau_and_station(factory: sessionmaker[Session]) -> None:
    feb, march = dt.date(2025, 2, 1), dt.date(2025, 3, 1)
    with factory() as session:
        city = loop_numbers(session, "city", feb, feb).set_index("unit")
        yz = loop_numbers(session, "aud_yz", feb, feb).set_index("unit")
        st = loop_numbers(session, "city", feb, feb, bureau="YZ").set_index("unit")
        none = loop_numbers(session, "city", march, march)
    assert none.empty
    assert city.loc["YZ", "raised"] == 30 and city.loc["JB", "raised"] == 8
    assert city.loc["YZ", "closed_on_time"] == 1 and city.loc["JB", "closed_on_time"] == 0
    assert city.loc["YZ", "hit_rate"] == 100.0
    assert city.loc["YZ", "recovered"] == 624.0 + 1872.0
    assert list(yz.index) == ["YZ"]
    assert st["raised"].sum() == 30 and set(st.index) == {"YZ-S1", "YZ-S2"}


def test_dashboard_shows_business_and_loop_numbers(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    mart = Mart(build_mart(tmp_path / "mart"))
    app = DashboardApp(factory, "city", mart=mart, lang="en", period="2025-02")
    table = app.table.set_index("bureau")
    assert set(table.index) == {"YZ", "JB"}
    expected = business_indicators(mart, "YZ", dt.date(2025, 2, 1), dt.date(2025, 2, 28))
    assert table.loc["YZ", "sales_kwh"] == pytest.approx(expected["sales_kwh"].sum())
    assert table.loc["YZ", "raised"] == 30
    assert "Collection rate" in app.overview.value or "collection rate" in app.overview.value
    app.drill.value = "YZ"
    assert set(app.stations["unit"]) == {"YZ-S1", "YZ-S2"}
    assert "YZ-S1" in app.detail.value
    mine = DashboardApp(factory, "aud_jb", mart=mart, lang="en", period="2025-02")
    assert list(mine.table["bureau"]) == ["JB"]
    assert [b for _, b in mine.drill.options] == [None, "JB"]
