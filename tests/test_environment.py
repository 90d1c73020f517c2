"""The conda environment mirrors pyproject.toml, which is the source of truth."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
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


NOT_IMPORTED = {
    "ipykernel": "the kernel papermill and Voila start",
    "jupyterlab": "the analysts' JupyterLab",
}
"""Declared runtime dependencies that audit_lib does not import, and why they are declared."""


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _imported_top_levels() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "audit_lib").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"audit_lib"}


def test_what_audit_lib_imports_is_declared_and_what_is_declared_is_used() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in project["dependencies"]}
    dists = importlib.metadata.packages_distributions()
    imported = {
        top: {d.lower().replace("_", "-") for d in dists.get(top, [])}
        for top in _imported_top_levels()
    }
    undeclared = sorted(top for top, owners in imported.items() if not owners & declared)
    assert not undeclared, f"imported by audit_lib but not declared: {undeclared}"
    used = set().union(*imported.values())
    unused = sorted(declared - used - set(NOT_IMPORTED))
    assert not unused, f"declared but never imported by audit_lib: {unused}"


def test_installed_versions_meet_the_declared_minimums() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"] + project["optional-dependencies"]["dev"]:
        name = _name(requirement)
        low = re.search(r">=\s*([\w.]+)", requirement)
        if low is None:
            continue
        have = importlib.metadata.version(name)
        assert _parts(have) >= _parts(low.group(1)), f"{name} {have} is below {low.group(1)}"


def _parts(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])
