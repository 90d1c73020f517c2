"""Per-bureau papermill runs: outputs, failure isolation, timeout, killed kernel, log streaming,
retry of the failed bureaus and Dask scale-out. Real papermill, real kernels, no mocks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from audit_lib.runs.manifest import bureau_statuses, read_run, write_json_atomic
from audit_lib.runs.runner import close_run, retry_failed, run_notebook
from audit_lib.themes.catalogue import theme_versions

NOTEBOOKS = Path(__file__).parent / "notebooks"
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def write_bureau(root: Path, code: str, notebooks: dict[str, dict[str, object]] | None = None):
    folder = root / "parameters" / "bureaus"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"code: {code}", f"name_zh: 测试{code}", f"name_en: Test {code}", "notebooks:"]
    for stem, params in (notebooks or {}).items():
        lines.append(f"  {stem}: {json.dumps(params)}")
    if not notebooks:
        lines[-1] = "notebooks: {}"
    (folder / f"{code}.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with three bureaus (B1..B3) and the test notebooks; cwd is set to it."""
    for code in ("B1", "B2", "B3"):
        write_bureau(tmp_path, code)
    shutil.copytree(NOTEBOOKS, tmp_path / "nb")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def audit_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "audit_lib.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def manifest(run_dir: Path, bureau: str) -> dict[str, object]:
    return json.loads((run_dir / bureau / "manifest.json").read_text(encoding="utf-8"))


def test_run_notebook_writes_notebook_html_manifest_per_bureau(project: Path) -> None:
    for code in ("B1", "B2", "B3"):
        (project / "mart" / "customers" / f"bureau={code}").mkdir(parents=True)
        (project / "mart" / "customers" / f"bureau={code}" / "part-0.parquet").write_bytes(b"c")
    (project / "mart" / "readings" / "bureau=B1").mkdir(parents=True)
    (project / "mart" / "readings" / "bureau=B1" / "part-0.parquet").write_bytes(b"x" * 10)
    summary = run_notebook(
        "nb/ok.ipynb",
        "all",
        "2024-03",
        workers=2,
        outputs="out",
        mart="mart",
        theme_versions={"zero_kwh": "3"},
        progress=False,
    )
    assert summary.exit_code == 0
    assert summary.ok == ["B1", "B2", "B3"]
    run_dir = project / "out" / summary.run_id
    for code in ("B1", "B2", "B3"):
        nb = nbformat.read(run_dir / code / "ok.ipynb", as_version=4)
        printed = "".join(
            o.get("text", "")
            for c in nb.cells
            if c.cell_type == "code"
            for o in c.get("outputs", [])
        )
        assert f"bureau {code} period 2024-03 value 270.0" in printed
        html = (run_dir / code / "ok.html").read_text(encoding="utf-8")
        assert f"bureau {code} period 2024-03" in html
        assert "np.arange" not in html  # code cells are excluded from the report
        assert "cdnjs" not in html and 'src=""' not in html  # nothing loaded from outside
        m = manifest(run_dir, code)
        assert m["status"] == "ok" and m["error"] is None
        assert m["parameters"] == {"bureau": code, "period": "2024-03", "run_id": summary.run_id}
        assert m["theme_versions"] == {"zero_kwh": "3"}
        assert m["data_fingerprint"]["digest"].startswith("sha256:")
        assert m["started_at"] < m["ended_at"]
    # B1's fingerprint sees its own partitions; B2 and B3 see none of B1's files
    assert manifest(run_dir, "B1")["data_fingerprint"]["files"] == 2
    assert manifest(run_dir, "B2")["data_fingerprint"]["files"] == 1
    assert read_run("out", summary.run_id)["status"] == "ok"


def test_cli_run_one_failure_does_not_stop_others_and_exits_nonzero(project: Path) -> None:
    proc = audit_cli(
        "run",
        "nb/failing.ipynb",
        "--bureau",
        "B1,B2,B3",
        "--period",
        "2024-01",
        "--outputs",
        "out",
        "-p",
        "trouble=[B2]",
        "--no-progress",
        cwd=project,
    )
    assert proc.returncode == 1, proc.stderr
    run_dir = next((project / "out").iterdir())
    assert [manifest(run_dir, b)["status"] for b in ("B1", "B2", "B3")] == ["ok", "failed", "ok"]
    error = manifest(run_dir, "B2")["error"]
    assert error["kind"] == "cell_error" and "planted failure for B2" in error["message"], error
    kept = (run_dir / "B2" / "failing.ipynb").read_text(encoding="utf-8")
    assert "planted failure for B2" in kept  # the failed notebook is kept as the log
    assert "1 失败 failed" in proc.stdout and "--retry-failed" in proc.stdout
    assert manifest(run_dir, "B1")["theme_versions"] == theme_versions()  # all, by default


def test_run_timeout_stops_hanging_cell(project: Path) -> None:
    t0 = time.perf_counter()
    summary = run_notebook(
        "nb/hanging.ipynb",
        "B1,B2",
        "2024-01",
        workers=2,
        outputs="out",
        timeout=3,
        parameters={"trouble": ["B1"]},
        progress=False,
    )
    assert time.perf_counter() - t0 < 90
    assert summary.failed == ["B1"] and summary.ok == ["B2"]
    m = manifest(Path(summary.run_dir), "B1")
    assert m["error"]["kind"] == "timeout"
    assert (Path(summary.run_dir) / "B1" / "hanging.ipynb").is_file()


def test_run_killed_kernel_fails_only_that_bureau(project: Path) -> None:
    summary = run_notebook(
        "nb/kill_kernel.ipynb",
        "B1,B2",
        "2024-01",
        workers=2,
        outputs="out",
        parameters={"trouble": ["B2"]},
        progress=False,
    )
    assert summary.ok == ["B1"] and summary.failed == ["B2"]
    assert manifest(Path(summary.run_dir), "B2")["error"]["kind"] == "kernel_died"


def test_run_dead_worker_process_fails_only_that_bureau(project: Path) -> None:
    summary = run_notebook(
        "nb/kill_kernel.ipynb",
        "B1,B2,B3",
        "2024-01",
        workers=2,
        outputs="out",
        parameters={"trouble": ["B1"], "target": "worker"},
        progress=False,
    )
    assert summary.failed == ["B1"] and summary.ok == ["B2", "B3"]
    m = manifest(Path(summary.run_dir), "B1")
    assert m["status"] == "failed" and m["error"]["kind"] == "worker_died"
    assert "exited with code -9" in m["error"]["message"]


def test_log_file_streams_output_while_cell_runs(project: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "audit_lib.cli",
            "run",
            "nb/slow_progress.ipynb",
            "--bureau",
            "B1",
            "--period",
            "2024-01",
            "--outputs",
            "out",
            "-p",
            "steps=30",
            "-p",
            "pause=0.5",
            "--no-progress",
        ],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen, deadline = None, time.monotonic() + 90
        while time.monotonic() < deadline and seen is None:
            for log in (project / "out").glob("*/B1/log.txt"):
                text = log.read_text(encoding="utf-8")
                if "B1 step 2" in text:
                    seen = (text, json.loads((log.parent / "manifest.json").read_text()))
            time.sleep(0.1)
        assert seen is not None, "no streamed output within 90 s"
        text, live = seen
        assert "B1 finished" not in text  # read before the cell ended
        assert live["status"] == "running"
        assert proc.poll() is None
    finally:
        _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    log = next((project / "out").glob("*/B1/log.txt")).read_text(encoding="utf-8")
    assert "B1 step 29" in log and "B1 finished" in log


def test_retry_failed_reruns_only_failed_bureaus(project: Path) -> None:
    write_bureau(project, "B2", {"failing": {"trouble": ["B2"]}})
    first = run_notebook(
        "nb/failing.ipynb", "B1,B2", "2024-01", workers=2, outputs="out", progress=False
    )
    assert first.failed == ["B2"]
    run_dir = Path(first.run_dir)
    b1_before = (run_dir / "B1" / "manifest.json").read_bytes()
    write_bureau(project, "B2", {"failing": {"trouble": []}})  # the cause is fixed
    second = retry_failed(first.run_id, outputs="out", progress=False)
    assert second.exit_code == 0 and second.ok == ["B1", "B2"]
    assert (run_dir / "B1" / "manifest.json").read_bytes() == b1_before  # not re-run
    m = manifest(run_dir, "B2")
    assert m["attempt"] == 2 and m["history"][0]["status"] == "failed"
    assert '"ename": "RuntimeError"' in (run_dir / "B2" / "failing.attempt-1.ipynb").read_text()
    assert '"ename": "RuntimeError"' not in (run_dir / "B2" / "failing.ipynb").read_text()
    assert read_run("out", first.run_id)["retries"][0]["bureaus"] == ["B2"]
    assert retry_failed(first.run_id, outputs="out", progress=False).ok == ["B1", "B2"]
    shutil.rmtree(run_dir / "B1")  # as if the run had been interrupted before B1 started
    assert bureau_statuses("out", first.run_id) == {"B1": "missing", "B2": "ok"}
    third = retry_failed(first.run_id, outputs="out", progress=False)
    assert third.ok == ["B1", "B2"] and manifest(run_dir, "B1")["attempt"] == 1


def test_summary_counts_a_bureau_that_never_ran_as_failed(project: Path) -> None:
    folder = project / "out" / "r1"
    write_json_atomic(
        folder / "run.json",
        {"run_id": "r1", "notebook": "nb/ok.ipynb", "period": "2024-01", "bureaus": ["B1"]},
    )
    summary = close_run(read_run("out", "r1"), "out")
    assert summary.failed == ["B1"] and summary.exit_code == 1
    assert "never ran" in summary.format()
    assert read_run("out", "r1")["status"] == "failed"


def test_bad_parameters_fail_only_that_bureau(project: Path) -> None:
    write_bureau(project, "B2", {"ok": {"threshold": "high"}})
    write_bureau(project, "B3", {"ok": {"no_such_parameter": 1}})
    summary = run_notebook(
        "nb/ok.ipynb", "B1,B2,B3", "2024-01", workers=2, outputs="out", progress=False
    )
    assert summary.ok == ["B1"] and summary.failed == ["B2", "B3"]
    e2 = manifest(Path(summary.run_dir), "B2")["error"]
    e3 = manifest(Path(summary.run_dir), "B3")["error"]
    assert e2["kind"] == "bad_parameters" and "B2.yml" in e2["message"]
    assert "'threshold'" in e2["message"] and "float" in e2["message"]
    assert "B3.yml" in e3["message"] and "'no_such_parameter'" in e3["message"]
    assert not (Path(summary.run_dir) / "B2" / "ok.ipynb").exists()  # never executed


def test_cli_run_on_dask_local_cluster(project: Path) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        protocol="tcp://",
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        proc = audit_cli(
            "run",
            "nb/ok.ipynb",
            "--bureau",
            "B1,B2",
            "--period",
            "2024-02",
            "--outputs",
            "out",
            "--cluster",
            cluster.scheduler_address,
            "--no-progress",
            cwd=project,
        )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    run_dir = next((project / "out").iterdir())
    for code in ("B1", "B2"):
        assert manifest(run_dir, code)["status"] == "ok"
        assert (run_dir / code / "ok.html").is_file()
