"""One papermill execution of a notebook for one bureau.

:func:`execute_bureau` runs in a worker (a process of the pool, or a Dask worker). It writes,
into the bureau's folder ``outputs/<run_id>/<bureau>/``:

- ``manifest.json``: written as ``running`` before the kernel starts and rewritten atomically at
  the end with the status ``ok`` or ``failed``, the error, the timings, the parameters, the theme
  versions and the data snapshot fingerprint;
- ``log.txt``: the cells' stdout and stderr, streamed while the notebook runs (papermill's
  ``stdout_file`` / ``stderr_file``, flushed on every message);
- ``<notebook>.ipynb``: the executed notebook (kept when it fails: it is the log, with the
  traceback in place);
- ``<notebook>.html``: the report without code cells (nbconvert, ``exclude_input=True``).

It never raises for a notebook's own failure: an exception in a cell, a cell stopped by the
per-cell timeout, a kernel that died and bad parameters all end as a ``failed`` manifest.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from audit_lib.runs.manifest import (
    LOG_FILE,
    MANIFEST_FILE,
    STATUS_FAILED,
    STATUS_OK,
    STATUS_RUNNING,
    read_manifest,
    utc_now,
    write_json_atomic,
    write_text_atomic,
)

REASONS_ZH = {
    "cell_error": "单元格执行出错",
    "timeout": "单元格执行超时",
    "kernel_died": "内核意外退出",
    "bad_parameters": "参数错误",
    "worker_died": "工作进程意外退出",
    "report": "报告导出失败",
    "error": "执行失败",
}


@dataclass(frozen=True)
class BureauJob:
    """Everything a worker needs to run one bureau (picklable, absolute paths).

    Attributes
    ----------
    run_id, bureau, period
        Identity of the execution.
    notebook
        Absolute path of the input notebook.
    out_dir
        Absolute path of ``outputs/<run_id>/<bureau>``.
    cwd
        Working directory of the kernel (passed to the kernel, not via ``os.chdir``).
    parameters
        Final, checked parameters injected by papermill.
    timeout
        Per-cell timeout in seconds (``None``: no limit).
    notebook_label
        The notebook as the user named it, recorded in the manifest.
    parameter_error
        When the parameters failed their check: the message; the notebook is not executed.
    """

    run_id: str
    bureau: str
    period: str
    notebook: str
    out_dir: str
    cwd: str
    parameters: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    start_timeout: float = 60.0
    theme_versions: dict[str, int | str] | None = None
    data_fingerprint: dict[str, Any] | None = None
    notebook_label: str = ""
    parameter_error: str | None = None
    kernel_name: str | None = None

    @property
    def output_notebook(self) -> Path:
        """Path of the executed notebook."""
        return Path(self.out_dir) / Path(self.notebook).name

    @property
    def html_report(self) -> Path:
        """Path of the HTML report."""
        return self.output_notebook.with_suffix(".html")


@dataclass(frozen=True)
class BureauResult:
    """Outcome of one bureau's execution (also read back from its manifest)."""

    bureau: str
    status: str
    error: dict[str, Any] | None
    started_at: str
    ended_at: str
    duration_s: float
    out_dir: str

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping."""
        return asdict(self)


def describe_error(exc: BaseException, timeout: float | None = None) -> dict[str, Any]:
    """Classify an execution failure: kind, English message, Chinese reason."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    cell: int | None = None
    if isinstance(exc, PapermillExecutionError):
        kind, message, cell = "cell_error", f"{exc.ename}: {exc.evalue}", exc.exec_count
    elif isinstance(exc, CellTimeoutError):
        kind, message = "timeout", f"a cell ran longer than the timeout of {timeout} s"
    elif isinstance(exc, DeadKernelError):
        kind, message = "kernel_died", f"the kernel died: {exc}"
    else:
        kind, message = "error", f"{type(exc).__name__}: {exc}"
    return error_record(kind, message, cell=cell)


def error_record(kind: str, message: str, *, cell: int | None = None) -> dict[str, Any]:
    """An error entry of a manifest."""
    return {
        "kind": kind,
        "message": message.strip()[:2000],
        "reason_zh": REASONS_ZH.get(kind, REASONS_ZH["error"]),
        "cell": cell,
    }


def _base_manifest(job: BureauJob, started: str) -> dict[str, Any]:
    previous = read_manifest(Path(job.out_dir))
    history: list[dict[str, Any]] = []
    if previous is not None:
        history = [*previous.get("history", [])]
        history.append({k: previous.get(k) for k in ("started_at", "ended_at", "status", "error")})
    return {
        "run_id": job.run_id,
        "notebook": job.notebook_label or Path(job.notebook).name,
        "bureau": job.bureau,
        "period": job.period,
        "parameters": job.parameters,
        "theme_versions": job.theme_versions,
        "data_fingerprint": job.data_fingerprint,
        "started_at": started,
        "ended_at": None,
        "duration_s": None,
        "status": STATUS_RUNNING,
        "error": None,
        "attempt": len(history) + 1,
        "history": history,
        "outputs": {
            "notebook": job.output_notebook.name,
            "html": job.html_report.name,
            "log": LOG_FILE,
        },
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }


_local = threading.local()


CDN_URLS = ("mathjax_url", "require_js_url", "jquery_url", "jupyter_widgets_base_url",
            "widget_renderer_url", "mermaid_js_url", "mermaid_layout_elk_js_url")  # fmt: skip
"""The exporter's script addresses, all on public CDNs: set empty, a report loads nothing from
outside (its tables and charts need no script)."""
EMPTY_SCRIPT = re.compile(r'<script[^>]*\bsrc=""[^>]*>\s*</script>')


def _html_exporter() -> Any:
    """One exporter per thread (building one loads templates; sharing one is not thread-safe)."""
    exporter = getattr(_local, "exporter", None)
    if exporter is None:
        from nbconvert import HTMLExporter

        exporter = HTMLExporter(
            exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
            **dict.fromkeys(CDN_URLS, ""),
        )  # fmt: skip
        _local.exporter = exporter
    return exporter


def preload() -> None:
    """Import papermill and warm the HTML exporter up (templates compiled).

    Called before the workers are forked, so every worker inherits them instead of paying.
    """
    import nbformat
    import papermill  # noqa: F401

    _html_exporter().from_notebook_node(nbformat.v4.new_notebook())  # compiles the templates


def export_html(notebook: Path, html: Path, title: str) -> None:
    """Write ``notebook`` as an HTML report without code cells or prompts."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    nb.metadata["title"] = title
    body, _ = _html_exporter().from_notebook_node(nb)
    write_text_atomic(html, EMPTY_SCRIPT.sub("", body))


def _run_papermill(job: BureauJob, log: Any) -> None:
    import papermill

    papermill.execute_notebook(
        job.notebook,
        str(job.output_notebook),
        parameters=job.parameters,
        kernel_name=job.kernel_name,
        progress_bar=False,
        log_output=False,
        stdout_file=log,
        stderr_file=log,
        start_timeout=job.start_timeout,
        execution_timeout=job.timeout,
        # The kernel starts in job.cwd; papermill's own ``cwd`` would os.chdir the worker,
        # which is not safe when a Dask worker runs several bureaus in threads.
        resources={"metadata": {"path": job.cwd}},
        # Every output has arrived when the last cell is done: kill the kernel instead of the
        # graceful shutdown handshake (saves about a second per bureau).
        shutdown_kernel="immediate",
    )


def _set_aside_previous(job: BureauJob, attempt: int) -> None:
    """Rename an earlier attempt's notebook and report (``x.ipynb`` → ``x.attempt-1.ipynb``),
    so what sits under the plain names always belongs to the current attempt."""
    if attempt < 1:
        return
    for path in (job.output_notebook, job.html_report):
        if path.is_file():
            path.replace(path.with_name(f"{path.stem}.attempt-{attempt}{path.suffix}"))


def execute_bureau(job: BureauJob) -> BureauResult:
    """Run ``job``'s notebook for its bureau and record the outcome in its folder.

    Returns
    -------
    BureauResult
        Status ``ok`` or ``failed``; the same facts are in ``manifest.json``.
    """
    out = Path(job.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started, t0 = utc_now(), time.perf_counter()
    manifest = _base_manifest(job, started)
    _set_aside_previous(job, manifest["attempt"] - 1)
    write_json_atomic(out / MANIFEST_FILE, manifest)
    error: dict[str, Any] | None = None
    with open(out / LOG_FILE, "a", encoding="utf-8", buffering=1) as log:
        log.write(
            f"=== {started} run {job.run_id} bureau {job.bureau} period {job.period} "
            f"attempt {manifest['attempt']} ===\n"
        )
        if job.parameter_error is not None:
            error = error_record("bad_parameters", job.parameter_error)
        else:
            try:
                _run_papermill(job, log)
            except Exception as exc:  # the boundary: any failure of one bureau is recorded
                error = describe_error(exc, job.timeout)
            if job.output_notebook.is_file():
                try:
                    title = f"{job.bureau} {job.period} {Path(job.notebook).stem}"
                    export_html(job.output_notebook, job.html_report, title)
                except Exception as exc:  # a report that cannot be exported fails the bureau
                    error = error or error_record("report", f"{type(exc).__name__}: {exc}")
        ended = utc_now()
        status = STATUS_FAILED if error else STATUS_OK
        log.write(f"=== {ended} {status}" + (f": {error['message']}" if error else "") + " ===\n")
    manifest.update(
        ended_at=ended,
        duration_s=round(time.perf_counter() - t0, 3),
        status=status,
        error=error,
    )
    write_json_atomic(out / MANIFEST_FILE, manifest)
    return result_from_manifest(manifest, out)


def result_from_manifest(manifest: dict[str, Any], out_dir: Path) -> BureauResult:
    """A :class:`BureauResult` from a manifest mapping."""
    return BureauResult(
        bureau=str(manifest["bureau"]),
        status=str(manifest["status"]),
        error=manifest.get("error"),
        started_at=str(manifest.get("started_at")),
        ended_at=str(manifest.get("ended_at")),
        duration_s=float(manifest.get("duration_s") or 0.0),
        out_dir=str(out_dir),
    )


def mark_failed(job: BureauJob, kind: str, message: str) -> BureauResult:
    """Record ``job`` as failed without running it (e.g. its worker process died)."""
    out = Path(job.out_dir)
    manifest = read_manifest(out)
    if manifest is None or manifest.get("status") != STATUS_RUNNING:
        manifest = _base_manifest(job, utc_now())
    manifest.update(ended_at=utc_now(), status=STATUS_FAILED, error=error_record(kind, message))
    write_json_atomic(out / MANIFEST_FILE, manifest)
    with open(out / LOG_FILE, "a", encoding="utf-8") as log:
        log.write(f"=== {manifest['ended_at']} failed: {message} ===\n")
    return result_from_manifest(manifest, out)
