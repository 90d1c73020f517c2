"""A cheap fingerprint of a data snapshot: file names, sizes and modification times, hashed.

No file is read, so fingerprinting a mart of many gigabytes takes milliseconds. Two runs with
the same fingerprint saw the same files; a rewritten partition (new size or mtime) changes it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from audit_lib.errors import ConfigError


@dataclass(frozen=True)
class Fingerprint:
    """Digest of a folder's files.

    Attributes
    ----------
    digest
        ``sha256:`` and the hex digest of every (relative path, size, mtime) triple.
    files
        Number of files hashed.
    bytes
        Their total size.
    """

    digest: str
    files: int
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping, for a manifest."""
        return asdict(self)


def _walk(root: Path) -> list[tuple[str, int, int]]:
    entries: list[tuple[str, int, int]] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as it:
            for entry in it:
                if entry.name.startswith((".", "_")):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file():
                    st = entry.stat()
                    rel = Path(entry.path).relative_to(root).as_posix()
                    entries.append((rel, st.st_size, st.st_mtime_ns))
    return entries


def fingerprint_folder(root: Path | str, *, bureau: str | None = None) -> Fingerprint:
    """Fingerprint every file under ``root`` (hidden and ``_``-prefixed entries skipped).

    Parameters
    ----------
    root
        A mart folder (or any data folder).
    bureau
        If given, keep only files that belong to that bureau or to no bureau: paths with a
        ``bureau=<other>`` component are left out, so one bureau's fingerprint does not change
        when another bureau's partitions are rewritten.

    Raises
    ------
    ConfigError
        If ``root`` is not a folder.
    """
    folder = Path(root)
    if not folder.is_dir():
        raise ConfigError(f"data snapshot folder not found: {folder}")
    entries = _walk(folder)
    if bureau is not None:
        own = f"bureau={bureau}"
        entries = [
            e
            for e in entries
            if not any(p.startswith("bureau=") and p != own for p in e[0].split("/"))
        ]
    entries.sort()
    h = hashlib.sha256()
    for rel, size, mtime in entries:
        h.update(f"{rel}\0{size}\0{mtime}\n".encode())
    return Fingerprint(f"sha256:{h.hexdigest()}", len(entries), sum(e[1] for e in entries))
