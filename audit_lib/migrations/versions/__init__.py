"""Alembic revision scripts (a linear chain)."""
