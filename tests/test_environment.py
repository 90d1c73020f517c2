"""The conda environment mirrors pyproject.toml, which is the source of truth."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pip_section(env: dict[str, object]) -> list[str]:
    for item in env["dependencies"]:  # type: ignore[attr-defined]
        if isinstance(item, dict) and "pip" in item:
            return list(item["pip"])
    return []


def test_environment_yml_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    have = set(_pip_section(env))
    assert have == wanted, f"missing: {sorted(wanted - have)}; extra: {sorted(have - wanted)}"


def test_environment_yml_pins_python_311() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
