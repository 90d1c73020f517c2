"""Every committed notebook is clean and thin (STYLE.md).

Under ``notebooks/`` and ``voila_apps/``: no outputs, no execution counts, no ``def``/``class``.
Under ``notebooks/`` also: exactly one cell tagged ``parameters`` holding annotated assignments
only, and 5–15 cells. The tests pass when there is no notebook yet and apply as notebooks land;
the checkers themselves are tested on small bad notebooks, so they can fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK_DIRS = ("notebooks", "voila_apps")
MIN_CELLS, MAX_CELLS = 5, 15


def committed_notebooks(*folders: str) -> list[Path]:
    found = []
    for folder in folders:
        found += [
            p
            for p in sorted((REPO / folder).rglob("*.ipynb"))
            if ".ipynb_checkpoints" not in p.parts
        ]
    return found


def python_source(cell_source: str) -> str:
    """Cell source with IPython magics and shell escapes blanked out (line numbers kept)."""
    if cell_source.lstrip().startswith("%%"):
        return ""
    return "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in cell_source.splitlines()
    )


def output_problems(nb: nbformat.NotebookNode) -> list[str]:
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.get("outputs"):
            problems.append(f"cell {i} has committed outputs")
        if cell.cell_type == "code" and cell.get("execution_count") is not None:
            problems.append(f"cell {i} has an execution count")
    return problems


def definition_problems(nb: nbformat.NotebookNode) -> list[str]:
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(python_source(cell.source))
        except SyntaxError as exc:
            problems.append(f"cell {i} is not valid Python: {exc.msg}")
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                kind = "class" if isinstance(node, ast.ClassDef) else "def"
                problems.append(f"cell {i} defines {kind} {node.name}: move it to audit_lib")
    return problems


def parameters_problems(nb: nbformat.NotebookNode) -> list[str]:
    tagged = [(i, c) for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    if len(tagged) != 1:
        return [f"{len(tagged)} cells tagged 'parameters', expected exactly 1"]
    index, cell = tagged[0]
    if cell.cell_type != "code":
        return [f"cell {index} tagged 'parameters' is not a code cell"]
    problems = []
    for node in ast.parse(python_source(cell.source)).body:
        if not (isinstance(node, ast.AnnAssign) and node.value is not None):
            problems.append(
                f"parameters cell {index}, line {node.lineno}: only annotated assignments "
                "(name: type = value  # help) are allowed"
            )
    return problems


def size_problems(nb: nbformat.NotebookNode) -> list[str]:
    n = len(nb.cells)
    return [] if MIN_CELLS <= n <= MAX_CELLS else [f"{n} cells, expected {MIN_CELLS}–{MAX_CELLS}"]


def collect(paths: list[Path], *checks: object) -> list[str]:
    problems = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        for check in checks:
            assert callable(check)
            problems += [f"{path.relative_to(REPO)}: {p}" for p in check(nb)]
    return problems


def test_notebooks_have_no_outputs_or_execution_counts() -> None:
    assert collect(committed_notebooks(*NOTEBOOK_DIRS), output_problems) == []


def test_notebooks_have_no_def_or_class() -> None:
    assert collect(committed_notebooks(*NOTEBOOK_DIRS), definition_problems) == []


def test_notebooks_have_one_parameters_cell_of_annotated_assignments() -> None:
    assert collect(committed_notebooks("notebooks"), parameters_problems) == []


def test_notebooks_have_5_to_15_cells() -> None:
    assert collect(committed_notebooks("notebooks"), size_problems) == []


def _good_notebook() -> nbformat.NotebookNode:
    params = new_code_cell('bureau: str = "YZ"  # bureau\nperiod: str = "2025-01"  # period')
    params.metadata["tags"] = ["parameters"]
    cells = [new_markdown_cell("# Purpose"), params]
    cells += [new_code_cell(f"%matplotlib inline\nx{i} = {i}") for i in range(4)]
    return new_notebook(cells=cells)


def test_checkers_accept_a_clean_notebook() -> None:
    nb = _good_notebook()
    checks = (output_problems, definition_problems, parameters_problems, size_problems)
    assert [p for check in checks for p in check(nb)] == []


def test_checkers_catch_each_problem() -> None:
    nb = _good_notebook()
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1")]
    nb.cells[3].execution_count = 3
    nb.cells[4].source = "def helper():\n    return 1\n\nclass Thing:\n    pass"
    nb.cells[1].source += "\nlimit = compute()"
    extra = new_code_cell("y: int = 1")
    extra.metadata["tags"] = ["parameters"]
    assert len(output_problems(nb)) == 2
    assert [p.split(":")[0] for p in definition_problems(nb)] == [
        "cell 4 defines def helper",
        "cell 4 defines class Thing",
    ]
    assert "line 3: only annotated assignments" in parameters_problems(nb)[0]
    nb.cells.append(extra)
    assert parameters_problems(nb) == ["2 cells tagged 'parameters', expected exactly 1"]
    nb.cells = nb.cells[:4]
    assert size_problems(nb) == ["4 cells, expected 5–15"]
