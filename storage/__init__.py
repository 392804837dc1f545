"""The ground floor for data: the SQLAlchemy base, column types, engines and sessions, every
model, the Alembic migrations, group commit, and the Redis client.

Nothing here imports a domain package (conversations, notifier, city, staff) or the app (bot);
they all stand on this. import-linter checks it (``make lint``).
"""
