"""Alembic migrations for citybot's schema (see ``bot.db.migrate``)."""
