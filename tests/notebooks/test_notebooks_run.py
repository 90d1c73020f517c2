"""The monitoring and operations notebooks, really executed by papermill on a tiny data set,
then re-validated cell by cell with ``pytest --nbval-lax``."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import papermill as pm
import pytest

from audit_lib.db import create_engine, session_factory
from audit_lib.demo.generate import DemoConfig, generate_demo
from audit_lib.migrations import upgrade
from audit_lib.tasks.models import Task, TaskFinding
from audit_lib.tasks.service import add_user

ROOT = Path(__file__).resolve().parents[2]
PERIOD = "2024-01..2024-05"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("tiny")
    generate_demo(
        out, DemoConfig(bureaus=1, customers=400, days=152, start=dt.date(2024, 1, 1), seed=5)
    )
    url = f"sqlite:///{out / 'audit.db'}"
    upgrade(url)
    engine = create_engine(url)
    with session_factory(engine)() as s:
        add_user(s, "system", "admin")
        s.commit()
    engine.dispose()
    return {"mart": str(out / "mart"), "db_url": url, "dir": str(out)}


def _count(url: str, model: type) -> int:
    engine = create_engine(url)
    try:
        with session_factory(engine)() as s:
            return s.query(model).count()
    finally:
        engine.dispose()


def test_monitoring_notebook_raises_tasks_once(tiny: dict[str, str], tmp_path: Path) -> None:
    params = {"bureau": "YZ", "period": PERIOD, "mart": tiny["mart"], "db_url": tiny["db_url"]}
    out = tmp_path / "monitoring.ipynb"
    pm.execute_notebook(str(ROOT / "notebooks/monitoring.ipynb"), str(out), parameters=params,
                        cwd=str(ROOT), progress_bar=False)  # fmt: skip
    tasks, links = _count(tiny["db_url"], Task), _count(tiny["db_url"], TaskFinding)
    assert tasks > 0 and links >= tasks
    pm.execute_notebook(str(ROOT / "notebooks/monitoring.ipynb"), str(out), parameters=params,
                        cwd=str(ROOT), progress_bar=False)  # fmt: skip
    assert _count(tiny["db_url"], Task) == tasks  # same bureau and period: nothing new
    assert _count(tiny["db_url"], TaskFinding) == links


def test_operations_notebook_then_nbval(tiny: dict[str, str], tmp_path: Path) -> None:
    params = {"bureau": "YZ", "period": PERIOD, "mart": tiny["mart"]}
    out = tmp_path / "operations.ipynb"
    nb = pm.execute_notebook(str(ROOT / "notebooks/operations.ipynb"), str(out),
                             parameters=params, cwd=str(ROOT), progress_bar=False)  # fmt: skip
    tables = [o for c in nb.cells for o in c.get("outputs", []) if "text/html" in o.get("data", {})]
    assert any("售电量" in t["data"]["text/html"] for t in tables)
    # nbval re-runs the executed (parameterised) copy and fails on any cell error
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--nbval-lax", "-p", "no:cacheprovider", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:]
