"""audit_lib.tasks."""
