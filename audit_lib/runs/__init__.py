"""Runs: notebooks executed per supply bureau with papermill, on demand or on a schedule.

- :mod:`~audit_lib.runs.params`: ``parameters/bureaus/<code>.yml``, checked against the
  notebook's ``parameters`` cell (``papermill.inspect_notebook``).
- :mod:`~audit_lib.runs.execute`: one bureau — executed notebook, HTML report without code,
  streamed log, atomic ``manifest.json``.
- :mod:`~audit_lib.runs.dispatch`: forked processes (one per bureau) or a Dask scheduler.
- :mod:`~audit_lib.runs.runner`: :func:`run_notebook` and :func:`retry_failed`.
- :mod:`~audit_lib.runs.manifest`: the files of a run folder.
- :mod:`~audit_lib.runs.fingerprint`: a cheap data snapshot fingerprint.
- :mod:`~audit_lib.runs.schedule` and :mod:`~audit_lib.runs.scheduler`: ``schedule.yml``, the
  long-running scheduler and ``schedule_once`` with a slot lock in the database
  (:mod:`~audit_lib.runs.models`).
- :mod:`~audit_lib.workflows.monitoring`, :mod:`~audit_lib.workflows.analysis` and
  :mod:`~audit_lib.workflows.analysis_charts`: what the monitoring and the analyst notebooks call
  (theme groups, tables, charts).
"""
