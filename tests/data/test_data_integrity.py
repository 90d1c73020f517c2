"""The mart's manifest and page checksums: a file lost, cut short or changed is named, not read."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_fixtures import run

from audit_lib.data.access import Mart
from audit_lib.data.integrity import MANIFEST, read_manifest, record_manifest, verify_mart
from audit_lib.data.mart import write_table
from audit_lib.demo.generate import DemoConfig, generate_demo
from audit_lib.detect.run import detect
from audit_lib.errors import DataError

PERIOD = (dt.date(2024, 3, 1), dt.date(2024, 5, 31))


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("city")
    generate_demo(
        out, DemoConfig(bureaus=1, customers=400, days=152, start=dt.date(2024, 1, 1), seed=5)
    )
    return out / "mart"


@pytest.fixture
def mart(city: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "mart"
    shutil.copytree(city, copy)
    return copy


def _readings_file(mart: Path) -> Path:
    return max((mart / "readings").rglob("*.parquet"), key=lambda p: p.stat().st_size)


def test_a_generated_mart_has_a_manifest_that_verifies(
    mart: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = read_manifest(mart)
    assert files and all(len(e["sha256"]) == 64 for e in files.values())
    assert verify_mart(mart, full=True) == []
    code, out, _ = run(capsys, "mart", "verify", "--mart", str(mart), "--full")
    assert code == 0 and f"mart OK: {len(files)} files" in out


def test_garbage_of_the_same_size_is_found_by_hash_and_refused_by_the_page_checksum(
    mart: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _readings_file(mart)
    data = bytearray(path.read_bytes())
    middle = len(data) // 3
    data[middle : middle + 4096] = np.random.default_rng(1).bytes(min(4096, len(data) // 3))
    path.write_bytes(bytes(data))
    assert verify_mart(mart) == []  # the size is the same: only the contents tell
    rel = path.relative_to(mart).as_posix()
    assert verify_mart(mart, full=True) == [f"content differs: {rel}"]
    code, _, err = run(capsys, "mart", "verify", "--mart", str(mart), "--full")
    assert code == 1 and rel in err
    with Mart(mart) as m, pytest.raises(DataError) as raised:
        detect(m, "YZ", *PERIOD, ["zero_consumption"])
    assert str(path) in str(raised.value)


@pytest.mark.parametrize("damage", ["truncate", "delete", "add"])
def test_a_mart_whose_files_do_not_match_is_refused_naming_the_file(
    mart: Path, damage: str
) -> None:
    path = _readings_file(mart)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        expect = "size differs"
    elif damage == "delete":
        path.unlink()
        expect = "missing"
    else:
        shutil.copy(path, path.with_name("extra-0.parquet"))
        path = path.with_name("extra-0.parquet")
        expect = "not in the manifest"
    with pytest.raises(DataError, match=expect) as raised:
        Mart(mart)  # what detection, indicators, analyses and apps open first
    assert str(path) in str(raised.value) and "audit mart verify" in str(raised.value)


def test_writing_through_the_mart_keeps_its_manifest_true(mart: Path) -> None:
    with Mart(mart) as m:
        bureaus = m.sql("SELECT * FROM bureaus")
    import pyarrow as pa

    write_table(mart, "bureaus", pa.Table.from_pandas(bureaus, preserve_index=False))
    assert verify_mart(mart, full=True) == []
    before = json.loads((mart / MANIFEST).read_text())
    assert record_manifest(mart) == len(before["files"])
