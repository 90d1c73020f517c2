"""audit_lib.detect."""
