"""Alembic migrations (a package only so that setuptools ships them in the wheel)."""
