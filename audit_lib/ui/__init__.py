"""audit_lib.ui."""
