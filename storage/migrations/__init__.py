"""Alembic migrations for citybot's schema (see ``storage.migrate``)."""
