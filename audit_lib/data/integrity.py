"""The mart's file manifest (集市文件清单): a file lost, cut short or changed is named before it
can change a finding.

The demo generator, the ingest and the SGCC loader record, at the end, every Parquet file
with its size and SHA-256 in ``_manifest.json`` (:func:`record_manifest`), and every publish
into a mart that has one keeps it true (:func:`update_manifest`). Opening the mart checks its
files against it (:func:`check_mart`: present, listed, of the recorded size; a stat per file);
``audit mart verify --full`` also hashes every file. Every mart file also carries Parquet page checksums
(:func:`audit_lib.data.mart.parquet_options`), which the Arrow readers verify: a page of
garbage of the same size fails its CRC on the way in (:func:`open_parquet`). A mart without a
manifest (one written before it existed, or by hand) is read as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from audit_lib.errors import DataError

MANIFEST = "_manifest.json"
VERSION = 1


def mart_files(mart: Path | str) -> list[Path]:
    """The Parquet files of a mart (paths relative to it, sorted), staging folders left out."""
    root = Path(mart)
    return sorted(
        p.relative_to(root)
        for p in root.rglob("*.parquet")
        if not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _hashes(root: Path, files: list[Path]) -> list[str]:
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # hashlib frees the GIL
        return list(pool.map(lambda rel: _sha256(root / rel), files))


def _entries(root: Path, files: list[Path]) -> dict[str, dict[str, Any]]:
    return {
        rel.as_posix(): {"size": (root / rel).stat().st_size, "sha256": digest}
        for rel, digest in zip(files, _hashes(root, files), strict=True)
    }


def _write(root: Path, entries: dict[str, dict[str, Any]]) -> None:
    part = root / f"{MANIFEST}.part"
    part.write_text(json.dumps({"version": VERSION, "files": entries}, indent=0), "utf-8")
    part.replace(root / MANIFEST)  # whole or absent


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """The manifest's lock: one writer reads, changes and writes it at a time."""
    with (root / f"{MANIFEST}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def record_manifest(mart: Path | str) -> int:
    """Write the manifest of every file now in the mart (atomically); return the file count."""
    root = Path(mart)
    with _locked(root):
        entries = _entries(root, mart_files(root))
        _write(root, entries)
    return len(entries)


def update_manifest(mart: Path | str, folders: list[Path]) -> None:
    """Bring the manifest of a mart that has one up to date for ``folders`` just written or
    removed (a publish of the mart): their old entries out, the files now in them in."""
    root = Path(mart)
    if not (root / MANIFEST).is_file():
        return
    with _locked(root):
        entries = read_manifest(root) or {}
        prefixes = tuple(Path(f).resolve().relative_to(root.resolve()).as_posix() + "/"
                         for f in folders)  # fmt: skip
        entries = {rel: e for rel, e in entries.items() if not rel.startswith(prefixes)}
        fresh = [rel for rel in mart_files(root) if rel.as_posix().startswith(prefixes)]
        entries.update(_entries(root, fresh))
        _write(root, entries)


def read_manifest(mart: Path | str) -> dict[str, dict[str, Any]] | None:
    """The manifest's files (relative path → size, sha256), or None when the mart has none.

    Raises
    ------
    DataError
        If the manifest is not readable JSON of the expected shape, naming it.
    """
    path = Path(mart) / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text("utf-8"))
        files = data["files"]
        if not isinstance(files, dict):
            raise TypeError("files is not a mapping")
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"mart manifest is not readable: {exc}", file=str(path)) from None
    return files


def verify_mart(mart: Path | str, *, full: bool = False, within: str = "") -> list[str]:
    """Problems of the mart's files against its manifest, one line each (none: all match).

    Every listed file must be there with its recorded size, and every file must be listed;
    ``full`` compares the SHA-256 of each too. ``within`` limits the check to paths that start
    with it or contain it as a folder (``bureau=YZ``).

    Raises
    ------
    DataError
        If the mart has no manifest.
    """
    root = Path(mart)
    recorded = read_manifest(root)
    if recorded is None:
        raise DataError("the mart has no manifest (written before manifests, or by hand)",
                        file=str(root / MANIFEST))  # fmt: skip

    def wanted(rel: str) -> bool:
        return not within or rel.startswith(within) or f"/{within}/" in f"/{rel}"

    present = {rel.as_posix() for rel in mart_files(root) if wanted(rel.as_posix())}
    listed = {rel for rel in recorded if wanted(rel)}
    problems = [f"missing: {rel}" for rel in sorted(listed - present)]
    problems += [f"not in the manifest: {rel}" for rel in sorted(present - listed)]
    both = sorted(present & listed)
    resized = set()
    for rel in both:
        size = (root / rel).stat().st_size
        if size != recorded[rel]["size"]:
            resized.add(rel)
            problems.append(f"size differs: {rel} (recorded {recorded[rel]['size']}, now {size})")
    if full:
        same_size = [rel for rel in both if rel not in resized]
        digests = _hashes(root, [Path(rel) for rel in same_size])
        problems += [
            f"content differs: {rel}"
            for rel, digest in zip(same_size, digests, strict=True)
            if digest != recorded[rel]["sha256"]
        ]
    return problems


def check_mart(mart: Path | str) -> None:
    """Refuse a mart whose files do not match its manifest (a stat per file; nothing when the
    mart has no manifest).

    Raises
    ------
    DataError
        Naming the first file that is missing, unlisted or of another size.
    """
    root = Path(mart)
    if read_manifest(root) is None:
        return
    problems = verify_mart(root)
    if problems:
        kind, _, rest = problems[0].partition(": ")
        raise DataError(f"the mart does not match its manifest ({kind}): run audit mart verify",
                        file=str(root / rest.split(" (")[0]))  # fmt: skip


def read_row_group(path: Path | str, group: int, **kwargs: Any) -> pa.Table:
    """One row group of a mart file, its pages' checksums verified; a page that fails its
    check, or a file that cannot be read, is a :class:`DataError` naming the file."""
    try:
        return open_parquet(path, **kwargs.pop("open", {})).read_row_group(group, **kwargs)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"mart file damaged: {exc}", file=str(path)) from None


def open_parquet(path: Path | str, **kwargs: Any) -> pq.ParquetFile:
    """A mart file opened for reading with its page checksums verified; a file that cannot be
    read (cut short, not Parquet) is a :class:`DataError` naming it."""
    try:
        return pq.ParquetFile(path, page_checksum_verification=True, **kwargs)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"not a readable Parquet file: {exc}", file=str(path)) from None
