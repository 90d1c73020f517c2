"""Thread pools of the bureaus' kernels: each gets its share of the cores, and a variable the
user set is left alone. A real run: the kernel reports its own environment."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from audit_lib.runs.dispatch import THREAD_VARIABLES, thread_limits
from audit_lib.runs.runner import run_notebook


@pytest.mark.parametrize(
    ("workers", "cpus", "expected"), [(2, 2, "1"), (1, 2, "2"), (2, 8, "4"), (3, 2, "1")]
)
def test_thread_limits_share_the_cores(
    monkeypatch: pytest.MonkeyPatch, workers: int, cpus: int, expected: str
) -> None:
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert thread_limits(workers, cpus) == {name: expected for name in THREAD_VARIABLES}


def test_thread_limits_keep_what_the_user_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    limits = thread_limits(2, 2)
    assert "OMP_NUM_THREADS" not in limits
    assert limits["OPENBLAS_NUM_THREADS"] == "1"


@pytest.mark.slow
def test_run_kernels_get_their_share_of_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "5")  # set by the user: kept
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "parameters" / "bureaus"
    folder.mkdir(parents=True)
    for code in ("B1", "B2"):
        (folder / f"{code}.yml").write_text(f"code: {code}\nname_zh: 甲\nname_en: A\n", "utf-8")
    params = new_code_cell('bureau: str = "B1"  # bureau\nperiod: str = "2024-01"  # period')
    params.metadata["tags"] = ["parameters"]
    show = f"import os\nprint([os.environ.get(v) for v in {list(THREAD_VARIABLES)!r}])"
    nb = new_notebook(
        cells=[params, new_code_cell(show)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )  # fmt: skip
    nbformat.write(nb, tmp_path / "env.ipynb")
    cpus = 4
    monkeypatch.setattr("os.cpu_count", lambda: cpus)
    summary = run_notebook("env.ipynb", "all", "2024-01", workers=2, outputs="out", progress=False)
    assert summary.ok == ["B1", "B2"]
    for code in ("B1", "B2"):
        done = nbformat.read(Path(summary.run_dir) / code / "env.ipynb", as_version=4)
        printed = "".join(o.get("text", "") for o in done.cells[-1].outputs)
        assert printed.strip() == "['2', '2', '5']"
