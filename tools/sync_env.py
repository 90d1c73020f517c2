"""Regenerate environment.yml from pyproject.toml (the source of truth).

Run: ``python tools/sync_env.py``. ``tests/test_environment.py`` fails when they drift.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["dev"]
    lines = [
        "# Mirrors pyproject.toml (the source of truth): regenerate with python tools/sync_env.py;",
        "# tests/test_environment.py checks they agree.",
        "name: audit-workbench",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        "  - python=3.11",
        "  - pip",
        "  - pip:",
        *[f'      - "{dep}"' for dep in deps],
    ]
    (ROOT / "environment.yml").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
