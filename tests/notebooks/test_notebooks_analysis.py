"""The analyst notebooks (one per theme group, and the evaluation), really executed through the
``audit run`` machinery on a tiny generated city, then re-validated with ``pytest --nbval-lax``;
their parameters are checked against the repo's parameter files as the runner checks them."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from audit_lib.demo.generate import DemoConfig, generate_demo
from audit_lib.runs.dispatch import THREAD_VARIABLES
from audit_lib.runs.params import check_parameters, list_bureaus, load_bureau, notebook_parameters
from audit_lib.runs.runner import REQUIRED_PARAMETERS, run_notebook
from audit_lib.workflows.analysis import THEME_GROUPS

ROOT = Path(__file__).resolve().parents[2]
PERIOD = "2024-01..2024-05"
ANALYST = [f"explore_{group}" for group in THEME_GROUPS] + ["evaluation"]


def _notebook(stem: str) -> Path:
    return ROOT / "notebooks" / f"{stem}.ipynb"


@pytest.mark.parametrize("stem", ANALYST)
def test_analyst_notebook_parameters_match_the_parameter_files(stem: str) -> None:
    declared = notebook_parameters(_notebook(stem))
    for name in (*REQUIRED_PARAMETERS, "mart"):
        assert declared[name]["inferred_type_name"] == "str", name
    for name, spec in declared.items():
        assert spec["help"], f"{stem}: parameter {name!r} has no '# help' comment"
    for code in list_bureaus(ROOT / "parameters"):
        bureau = load_bureau(code, ROOT / "parameters")
        check_parameters(_notebook(stem), bureau.for_notebook(stem), source=bureau.source)


def test_every_theme_group_has_its_notebook() -> None:
    stems = {p.stem for p in (ROOT / "notebooks").glob("explore_*.ipynb")}
    assert stems == {f"explore_{group}" for group in THEME_GROUPS}


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each analyst notebook run for bureau YZ of a tiny city by ``run_notebook``."""
    city = tmp_path_factory.mktemp("city")
    generate_demo(
        city, DemoConfig(bureaus=1, customers=400, days=152, start=dt.date(2024, 1, 1), seed=5)
    )
    outputs = city / "outputs"
    done = {}
    for stem in ANALYST:
        summary = run_notebook(
            _notebook(stem), "YZ", PERIOD, workers=2, parameters_dir=ROOT / "parameters",
            outputs=outputs, mart=city / "mart", progress=False,
        )  # fmt: skip
        manifest = (Path(summary.run_dir) / "YZ" / "manifest.json").read_text(encoding="utf-8")
        assert summary.ok == ["YZ"], manifest
        done[stem] = Path(summary.run_dir) / "YZ" / f"{stem}.ipynb"
    return done


def _outputs(path: Path) -> tuple[str, int]:
    """All HTML tables of an executed notebook as one text, and the number of images."""
    nb = nbformat.read(path, as_version=4)
    outs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    html = "".join(o["data"]["text/html"] for o in outs if "text/html" in o.get("data", {}))
    return html, sum("image/png" in o.get("data", {}) for o in outs)


@pytest.mark.slow
def test_analyst_notebooks_show_their_tables_and_charts(executed: dict[str, Path]) -> None:
    html, images = _outputs(executed["explore_theft"])
    assert "窃电嫌疑" in html and "seasonal_strength" in html and images == 2
    html, images = _outputs(executed["explore_billing"])
    assert "倍率异常" in html and "ev_recorded" in html and images == 1  # the multiplier case
    html, images = _outputs(executed["explore_line_loss"])
    assert "合格 qualified" in html and "corr" in html and images == 2
    html, images = _outputs(executed["explore_data_quality"])
    assert "负电量" in html and "ev_checks" in html and images == 1
    html, images = _outputs(executed["evaluation"])
    assert "wrong_multiplier" in html and "roc_auc" in html and images == 2
    for path in executed.values():  # every code cell showed something: a table or a chart
        nb = nbformat.read(path, as_version=4)
        tagged = {"parameters", "injected-parameters"}
        silent = [
            c.source
            for c in nb.cells
            if c.cell_type == "code"
            and not tagged & set(c.metadata.get("tags", []))
            and not c.get("outputs")
        ]
        assert len(silent) == 1 and silent[0].startswith("from "), path.name  # the imports
        assert (path.with_suffix(".html")).is_file()


@pytest.mark.slow
def test_analyst_notebooks_pass_nbval(executed: dict[str, Path]) -> None:
    env = {**os.environ, **{name: "1" for name in THREAD_VARIABLES}}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--nbval-lax", "-p", "no:cacheprovider",
         *map(str, executed.values())],
        cwd=ROOT, capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
