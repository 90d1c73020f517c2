"""The files of a run folder: ``run.json`` per run, ``manifest.json`` per bureau.

Layout::

    outputs/<run_id>/run.json                 # the plan: notebook, period, bureaus, options
    outputs/<run_id>/<bureau>/manifest.json   # one bureau's execution record
    outputs/<run_id>/<bureau>/<notebook>.ipynb, .html, log.txt

Every JSON file is written atomically (a temporary file in the same folder, then a rename), so a
reader sees the old or the new content, never half of it.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audit_lib.errors import ConfigError, NotFound

RUN_FILE = "run.json"
MANIFEST_FILE = "manifest.json"
LOG_FILE = "log.txt"
STATUS_RUNNING = "running"
STATUS_OK = "ok"
STATUS_FAILED = "failed"


def utc_now() -> str:
    """The current time, ISO 8601 in UTC with seconds precision and a ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as UTF-8 JSON to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=2, default=str)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object; a missing or malformed file raises NotFound / ConfigError."""
    if not path.is_file():
        raise NotFound(f"file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data


def run_dir(outputs: Path | str, run_id: str) -> Path:
    """Folder of run ``run_id`` under ``outputs``."""
    return Path(outputs) / run_id


def read_run(outputs: Path | str, run_id: str) -> dict[str, Any]:
    """The ``run.json`` of a run; NotFound if the run does not exist."""
    path = run_dir(outputs, run_id) / RUN_FILE
    if not path.is_file():
        raise NotFound(f"run {run_id!r} not found (no {path})")
    return read_json(path)


def read_manifest(bureau_dir: Path) -> dict[str, Any] | None:
    """A bureau's manifest, or None when it was never written."""
    path = bureau_dir / MANIFEST_FILE
    return read_json(path) if path.is_file() else None


def bureau_statuses(outputs: Path | str, run_id: str) -> dict[str, str]:
    """Status of every planned bureau of a run: ok / failed / running / missing."""
    plan = read_run(outputs, run_id)
    folder = run_dir(outputs, run_id)
    statuses = {}
    for bureau in plan.get("bureaus", []):
        manifest = read_manifest(folder / bureau)
        statuses[bureau] = "missing" if manifest is None else str(manifest.get("status"))
    return statuses
