"""Marketing audit & monitoring workbench (营销稽查监控系统).

Subpackages, lowest first (a package may only import those above it in this list):

- ``audit_lib.data``    -- schema, demo data, source systems, ingest, the Parquet mart
- ``audit_lib.detect``  -- audit themes: rules, time-series evidence, pyod ensembles, line loss
- ``audit_lib.themes``  -- theme catalogue and lifecycle
- ``audit_lib.tasks``   -- audit task records, state machine, tamper-evident log
- ``audit_lib.kpi``     -- indicators, scorecards, evaluation reports
- ``audit_lib.runs``    -- papermill runs per bureau, manifests, scheduler
- ``audit_lib.ui``      -- ipywidgets apps served by Voila
"""

__version__ = "0.1.0"
