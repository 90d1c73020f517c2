"""Data snapshot fingerprints: stable for the same files, changed by any rewrite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from audit_lib.errors import ConfigError
from audit_lib.runs.fingerprint import fingerprint_folder


def make_mart(root: Path) -> Path:
    for bureau in ("YZ", "JB"):
        part = root / "readings" / f"bureau={bureau}" / "month=2024-01"
        part.mkdir(parents=True)
        (part / "part-0.parquet").write_bytes(bureau.encode() * 100)
    (root / "tariffs").mkdir()
    (root / "tariffs" / "part-0.parquet").write_bytes(b"t" * 50)
    (root / ".staging").mkdir()
    (root / ".staging" / "tmp.parquet").write_bytes(b"ignored")
    return root


def test_fingerprint_is_stable_and_counts_files(tmp_path: Path) -> None:
    mart = make_mart(tmp_path)
    first, second = fingerprint_folder(mart), fingerprint_folder(mart)
    assert first == second
    assert (first.files, first.bytes) == (3, 450)


def test_fingerprint_changes_when_a_file_is_rewritten(tmp_path: Path) -> None:
    mart = make_mart(tmp_path)
    before = fingerprint_folder(mart)
    target = mart / "tariffs" / "part-0.parquet"
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert fingerprint_folder(mart).digest != before.digest


def test_bureau_fingerprint_ignores_other_bureaus(tmp_path: Path) -> None:
    mart = make_mart(tmp_path)
    yz = fingerprint_folder(mart, bureau="YZ")
    assert yz.files == 2  # its partition and the city-wide tariffs
    (mart / "readings" / "bureau=JB" / "month=2024-01" / "part-1.parquet").write_bytes(b"new")
    assert fingerprint_folder(mart, bureau="YZ") == yz
    assert fingerprint_folder(mart, bureau="JB").files == 3


def test_fingerprint_of_missing_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope"):
        fingerprint_folder(tmp_path / "nope")
