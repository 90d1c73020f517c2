"""The theft theme running beside the others gives the findings of a serial run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

import audit_lib.detect.run as run_module
from audit_lib.data.access import Mart
from audit_lib.demo.generate import DemoConfig, generate_demo

START, END = dt.date(2024, 1, 1), dt.date(2024, 6, 30)


@pytest.fixture(scope="module")
def mart_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("beside")
    generate_demo(out, DemoConfig(bureaus=1, customers=800, days=182, start=START, seed=13))
    return out / "mart"


def test_theft_beside_the_others_equals_the_serial_run(
    mart_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = START + dt.timedelta(days=90)
    with Mart(mart_dir) as mart:
        beside = run_module.detect(mart, "YZ", start, END)
        assert beside.context is not None and beside.context_seconds > 0
        monkeypatch.setattr(run_module, "BESIDE", frozenset())
        serial = run_module.detect(mart, "YZ", start, END)
    assert serial.context_seconds == 0
    assert list(beside.hits) == list(serial.hits) == list(run_module.THEME_DETECTORS)
    assert beside.hits == serial.hits and beside.hits["theft_suspicion"] > 0
    pd.testing.assert_frame_equal(beside.findings, serial.findings)
    assert set(beside.extras) == set(serial.extras)
