"""Run a notebook for many bureaus in parallel, and re-run the ones that failed.

:func:`run_notebook` plans one :class:`~audit_lib.runs.execute.BureauJob` per bureau and hands
them to a process pool (papermill and the kernels are per process; processes, not threads) or,
with ``cluster="tcp://HOST:PORT"``, to a Dask distributed scheduler. A progress bar counts
bureaus done and failed. One bureau failing never stops the others; :func:`retry_failed` re-runs
only the bureaus of a run that are not ``ok``, into the same run folder.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audit_lib.data.periods import parse_period
from audit_lib.errors import AuditError, ConfigError
from audit_lib.runs.dispatch import dispatch
from audit_lib.runs.execute import BureauJob, BureauResult, error_record, result_from_manifest
from audit_lib.runs.fingerprint import fingerprint_folder
from audit_lib.runs.manifest import (
    RUN_FILE,
    STATUS_FAILED,
    STATUS_OK,
    bureau_statuses,
    read_manifest,
    read_run,
    run_dir,
    utc_now,
    write_json_atomic,
)
from audit_lib.runs.params import (
    PARAMETERS_DIR,
    check_parameters,
    load_bureau,
    notebook_parameters,
    resolve_bureaus,
)
from audit_lib.themes.catalogue import theme_versions as all_versions

REQUIRED_PARAMETERS = ("bureau", "period")
"""Every notebook run per bureau declares these; the runner sets them."""
OPTIONAL_PARAMETERS = ("run_id", "bureau_name", "mart", "output_notebook")
"""Set by the runner only when the notebook declares them. A notebook that declares
``theme_params`` gets the bureau's ``themes`` there unless the run's parameters give it."""


@dataclass
class RunSummary:
    """Outcome of a run: one :class:`BureauResult` per planned bureau."""

    run_id: str
    notebook: str
    period: str
    run_dir: str
    results: list[BureauResult] = field(default_factory=list)

    @property
    def ok(self) -> list[str]:
        """Bureaus that succeeded."""
        return [r.bureau for r in self.results if r.status == STATUS_OK]

    @property
    def failed(self) -> list[str]:
        """Bureaus that did not succeed."""
        return [r.bureau for r in self.results if r.status != STATUS_OK]

    @property
    def exit_code(self) -> int:
        """0 when every bureau succeeded, else 1."""
        return 1 if self.failed else 0

    def format(self) -> str:
        """A plain-text summary: one line per bureau, then the totals."""
        lines = []
        for r in self.results:
            err = r.error or {}
            why = f"  {err.get('reason_zh', '')} / {err.get('message', '')}" if err else ""
            lines.append(f"  {r.bureau:<6} {r.status:<7} {r.duration_s:7.1f} s{why}")
        lines.append(
            f"运行 run {self.run_id}: {len(self.ok)} 成功 ok, {len(self.failed)} 失败 failed"
            f" → {self.run_dir}"
        )
        if self.failed:
            lines.append(
                f"  重跑失败项 / re-run the failed: audit run --retry-failed {self.run_id}"
            )
        return "\n".join(lines)


def new_run_id(notebook: str | Path, now: datetime | None = None) -> str:
    """A sortable, unique run id: ``20250101T063000Z-monitoring-1a2b3c``."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{Path(notebook).stem}-{uuid.uuid4().hex[:6]}"


def _check_notebook(notebook: Path) -> dict[str, dict[str, Any]]:
    declared = notebook_parameters(notebook)
    missing = [p for p in REQUIRED_PARAMETERS if p not in declared]
    if missing:
        raise ConfigError(
            f"notebook {notebook}: its parameters cell must declare {missing[0]!r} "
            f"(declared: {', '.join(sorted(declared)) or 'none'})"
        )
    return declared


def make_job(plan: Mapping[str, Any], bureau: str) -> BureauJob:
    """The job of one bureau of a planned run; bad parameters become a job that only fails."""
    notebook = Path(plan["notebook_path"])
    out_dir = Path(plan["run_dir"]) / bureau
    params: dict[str, Any] = {}
    error: str | None = None
    fingerprint = None
    try:
        declared = _check_notebook(notebook)
        spec = load_bureau(bureau, plan["parameters_dir"])
        own = spec.for_notebook(notebook)
        check_parameters(notebook, own, source=spec.source)
        extra = dict(plan.get("parameters") or {})
        check_parameters(notebook, extra, source=str(plan.get("parameters_source", "--param")))
        reserved = [k for k in (*own, *extra) if k in REQUIRED_PARAMETERS]
        if reserved:
            raise ConfigError(f"parameter {reserved[0]!r} is set by the runner, not by a file")
        optional: dict[str, Any] = {
            "run_id": plan["run_id"],
            "bureau_name": spec.name_zh,
            "mart": plan.get("mart"),
            "output_notebook": str(Path(plan["outputs"]) / plan["run_id"] / bureau / notebook.name),
        }
        # the one road of a bureau's theme parameters into a notebook (--param may replace it)
        themes = {"theme_params": spec.themes} if "theme_params" in declared else {}
        params = {**themes, **own, **extra, "bureau": bureau, "period": plan["period"]}
        params.update(
            {
                k: optional[k]
                for k in OPTIONAL_PARAMETERS
                if k in declared and optional[k] is not None
            }
        )
        if plan.get("mart"):
            fingerprint = fingerprint_folder(plan["mart_path"], bureau=bureau).to_dict()
    except AuditError as exc:
        error = str(exc)
    return BureauJob(
        run_id=plan["run_id"],
        bureau=bureau,
        period=plan["period"],
        notebook=str(notebook),
        out_dir=str(out_dir),
        cwd=plan["cwd"],
        parameters=params,
        timeout=plan.get("timeout"),
        theme_versions=plan.get("theme_versions"),
        data_fingerprint=fingerprint,
        notebook_label=plan["notebook"],
        parameter_error=error,
        kernel_name=plan.get("kernel_name"),
    )


def run_notebook(
    notebook: str | Path,
    bureaus: str | Sequence[str],
    period: str,
    workers: int = 2,
    cluster: str | None = None,
    *,
    parameters_dir: str | Path = PARAMETERS_DIR,
    outputs: str | Path = "outputs",
    parameters: Mapping[str, Any] | None = None,
    parameters_source: str = "--param",
    timeout: float | None = None,
    mart: str | Path | None = None,
    theme_versions: Mapping[str, int | str] | None = None,
    run_id: str | None = None,
    kernel_name: str | None = None,
    progress: bool = True,
) -> RunSummary:
    """Execute ``notebook`` once per bureau for ``period`` into ``outputs/<run_id>/<bureau>/``.

    Parameters
    ----------
    notebook
        The notebook; its parameters cell declares ``bureau`` and ``period``.
    bureaus
        ``"all"``, ``"B1,B2"`` or a list of codes with files in ``parameters_dir/bureaus``;
        with ``mart``, ``"all"`` keeps the bureaus that have customers in the mart.
    period
        Passed to every bureau's notebook as ``period``.
    workers
        Size of the process pool (ignored with ``cluster``: Dask decides).
    cluster
        ``tcp://HOST:PORT`` of a Dask distributed scheduler; the run folder must be on a
        file system the workers share.
    parameters
        Extra parameters for every bureau (override the bureau files); checked like them.
    timeout
        Per-cell timeout in seconds.
    mart
        The data mart: each manifest records its fingerprint; passed as ``mart`` if declared.
    theme_versions
        Theme id → version used, recorded in each manifest; by default the versions of every
        theme of the catalogue (``audit_lib.themes.catalogue.theme_versions()``).

    Raises
    ------
    ConfigError
        If the notebook is missing or lacks ``bureau``/``period``, a bureau has no parameter
        file, or the run folder exists. A bureau's own bad parameters only fail that bureau.
    """
    nb = Path(notebook)
    if not nb.is_file():
        raise ConfigError(f"notebook not found: {nb}")
    _check_notebook(nb)
    parse_period(period)  # a bad period is refused here, before any kernel starts
    selection = bureaus if isinstance(bureaus, str) else list(bureaus)
    codes = resolve_bureaus(selection, parameters_dir, mart=mart)
    run_id = run_id or new_run_id(nb)
    folder = run_dir(outputs, run_id)
    if (folder / RUN_FILE).exists():
        raise ConfigError(f"run folder already exists: {folder} (use --retry-failed {run_id})")
    plan: dict[str, Any] = {
        "run_id": run_id,
        "notebook": str(notebook),
        "notebook_path": str(nb.resolve()),
        "period": period,
        "bureaus": codes,
        "parameters": dict(parameters or {}),
        "parameters_source": parameters_source,
        "parameters_dir": str(Path(parameters_dir).resolve()),
        "timeout": timeout,
        "mart": str(mart) if mart is not None else None,
        "mart_path": str(Path(mart).resolve()) if mart is not None else None,
        "theme_versions": dict(theme_versions if theme_versions is not None else all_versions()),
        "kernel_name": kernel_name,
        "cwd": str(Path.cwd()),
        "outputs": str(outputs),
        "run_dir": str(folder.resolve()),
        "created_at": utc_now(),
        "status": "running",
    }
    write_json_atomic(folder / RUN_FILE, plan)
    jobs = [make_job(plan, code) for code in codes]
    dispatch(jobs, workers, cluster, progress=progress, desc=f"{nb.stem} {period}")
    return close_run(plan, outputs)


def close_run(plan: dict[str, Any], outputs: str | Path) -> RunSummary:
    """Summarise a run from its manifests and write the totals into its ``run.json``."""
    folder = run_dir(outputs, plan["run_id"])
    summary = RunSummary(plan["run_id"], plan["notebook"], plan["period"], str(folder))
    for bureau in plan["bureaus"]:
        manifest = read_manifest(folder / bureau)
        if manifest is None:  # never started (the run was interrupted): counts as failed
            error = error_record("error", "this bureau never ran")
            summary.results.append(BureauResult(bureau, "missing", error, "", "", 0.0, ""))
        else:
            summary.results.append(result_from_manifest(manifest, folder / bureau))
    plan.update(
        status=STATUS_FAILED if summary.failed else STATUS_OK,
        ok=summary.ok,
        failed=summary.failed,
        ended_at=utc_now(),
    )
    write_json_atomic(folder / RUN_FILE, plan)
    return summary


def retry_failed(
    run_id: str,
    *,
    outputs: str | Path = "outputs",
    workers: int = 2,
    cluster: str | None = None,
    progress: bool = True,
) -> RunSummary:
    """Re-run, into the same run folder, only the bureaus of ``run_id`` that are not ``ok``.

    Bureau parameter files are read again, so a fixed file takes effect. Bureaus that never
    started (the run was interrupted) count as failed.
    """
    plan = read_run(outputs, run_id)
    todo = [b for b, s in bureau_statuses(outputs, run_id).items() if s != STATUS_OK]
    jobs = [make_job(plan, b) for b in todo]
    plan.setdefault("retries", []).append({"at": utc_now(), "bureaus": todo})
    dispatch(jobs, workers, cluster, progress=progress, desc=f"retry {run_id}")
    return close_run(plan, outputs)
