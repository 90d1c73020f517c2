"""Hand bureau jobs to workers: a fork process pool by default, or a Dask distributed scheduler.

Every job ends with a :class:`~audit_lib.runs.execute.BureauResult`, whatever happens to its
worker: a job whose process died (or whose Dask task was lost) is recorded as failed and
the others go on. A tqdm progress bar counts bureaus done and failed.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path

from tqdm import tqdm

from audit_lib.errors import ConfigError
from audit_lib.runs.execute import (
    BureauJob,
    BureauResult,
    execute_bureau,
    mark_failed,
    preload,
    result_from_manifest,
)
from audit_lib.runs.manifest import LOG_FILE, STATUS_OK, read_manifest


def dispatch(
    jobs: Sequence[BureauJob],
    workers: int = 2,
    cluster: str | None = None,
    *,
    progress: bool = True,
    desc: str = "",
) -> list[BureauResult]:
    """Execute ``jobs`` in parallel; every job ends with a result, none raises."""
    if not jobs:
        return []
    bar = tqdm(total=len(jobs), desc=desc, unit="bureau", disable=not progress, file=sys.stderr)
    results: list[BureauResult] = []

    def finish(result: BureauResult) -> None:
        results.append(result)
        bar.update(1)
        failed = sum(r.status != STATUS_OK for r in results)
        bar.set_postfix(ok=len(results) - failed, failed=failed)

    try:
        if cluster:
            _dispatch_dask(jobs, cluster, finish)
        else:
            _dispatch_pool(jobs, workers, finish)
    finally:
        bar.close()
    order = {job.bureau: i for i, job in enumerate(jobs)}
    return sorted(results, key=lambda r: order[r.bureau])


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""Thread-pool sizes of OpenMP (scikit-learn's gradient boosting) and the BLAS libraries."""


def thread_limits(workers: int, cpus: int | None = None) -> dict[str, str]:
    """Threads per bureau's kernel so that ``workers`` kernels share the cores without
    oversubscribing them: ``cpus // workers`` (at least 1), for each variable of
    :data:`THREAD_VARIABLES` that the environment does not already set.

    Oversubscribed OpenMP threads spin-wait for each other: on the busy 2-core development
    machine the theft score of 400 customers took 28.7 s of CPU with the default two threads
    and 4.3 s with one.
    """
    per_kernel = max(1, (cpus or os.cpu_count() or 1) // max(1, workers))
    return {name: str(per_kernel) for name in THREAD_VARIABLES if name not in os.environ}


def _run_child(job: BureauJob, environment: dict[str, str] | None = None) -> None:
    """Body of a bureau's process: its stdout/stderr, and so the kernel's, go to its log;
    ``environment`` is added to the process's (and so the kernel's) environment."""
    os.environ.update(environment or {})
    out = Path(job.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    execute_bureau(job)


def _outcome(proc: BaseProcess, job: BureauJob) -> BureauResult:
    """The result of a finished bureau process: its manifest, or a failure if it died."""
    proc.join()
    if proc.exitcode == 0:  # execute_bureau returned: its manifest is final
        manifest = read_manifest(Path(job.out_dir))
        assert manifest is not None
        return result_from_manifest(manifest, Path(job.out_dir))
    message = f"worker process {proc.pid} exited with code {proc.exitcode}"
    return mark_failed(job, "worker_died", message)


def execute_isolated(job: BureauJob) -> BureauResult:
    """Run one bureau in a fresh (spawned) process and return its result.

    What a Dask worker runs: the kernel, its event loop and a crash stay out of the worker,
    whose threads may run several bureaus at once.
    """
    child = multiprocessing.get_context("spawn").Process(
        target=_run_child, args=(job,), name=f"run-{job.bureau}"
    )
    child.start()
    return _outcome(child, job)


def _dispatch_pool(
    jobs: Sequence[BureauJob], workers: int, finish: Callable[[BureauResult], None]
) -> None:
    """At most ``workers`` forked processes at a time, one per bureau, each with its share of
    the cores for its kernel's thread pools (:func:`thread_limits`).

    A fresh process per bureau (forked from a parent that has already imported papermill and
    nbconvert, so starting one costs milliseconds) means a process that dies takes only its own
    bureau with it: it is recorded as failed and the others go on, which a shared
    ``ProcessPoolExecutor`` cannot do (one dead worker breaks the whole pool).
    """
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    preload()
    limits = thread_limits(workers)
    context = multiprocessing.get_context("fork")
    pending = list(jobs)
    running: dict[int, tuple[BaseProcess, BureauJob]] = {}
    try:
        while pending or running:
            while pending and len(running) < workers:
                job = pending.pop(0)
                child = context.Process(
                    target=_run_child, args=(job, limits), name=f"run-{job.bureau}"
                )
                child.start()
                running[child.sentinel] = (child, job)
            for sentinel in wait(list(running), timeout=5.0):
                assert isinstance(sentinel, int)
                proc, job = running.pop(sentinel)
                finish(_outcome(proc, job))
    finally:
        for left, _ in running.values():  # interrupted (Ctrl-C): stop the children
            left.terminate()
            left.join(timeout=10)


def _dispatch_dask(
    jobs: Sequence[BureauJob], address: str, finish: Callable[[BureauResult], None]
) -> None:
    from distributed import Client
    from distributed import as_completed as dask_completed

    try:
        client = Client(address, timeout="15s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
    with client:
        futures = {}
        for job in jobs:
            key = f"audit-run-{job.run_id}-{job.bureau}-{uuid.uuid4().hex[:6]}"
            futures[client.submit(execute_isolated, job, key=key, pure=False)] = job
        for future in dask_completed(list(futures), loop=client.loop):
            job = futures[future]
            try:
                finish(future.result())
            except Exception as exc:  # the worker died or lost the task: record, keep going
                finish(mark_failed(job, "worker_died", f"{type(exc).__name__}: {exc}"))
