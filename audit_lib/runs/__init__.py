"""audit_lib.runs."""
