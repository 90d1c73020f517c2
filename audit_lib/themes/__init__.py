"""audit_lib.themes."""
