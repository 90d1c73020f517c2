"""audit_lib.kpi."""
