"""Column types that behave the same on SQLite and PostgreSQL.

SQLite has no time zones and no JSONB; these types hide that, so a model reads the same values
whichever database runs underneath.

Example::

    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = ["MAX_ROW_ID", "JsonDocument", "UtcDateTime", "row_id", "utc_now"]

# The largest id a BIGINT primary key holds: PostgreSQL refuses a larger number in a query
# (asyncpg cannot even send it), so it is never a row's id.
MAX_ROW_ID = 2**63 - 1


def utc_now() -> datetime:
    return datetime.now(UTC)


def row_id(text: str) -> int | None:
    """``text`` as a row id (a whole number a key can hold), or None.

    ASCII digits only: ``str.isdigit`` also accepts "²" and "٣", which ``int`` then refuses or
    reads as a number nobody typed.

    Example::

        row_id("42") == 42;  row_id("²") is None;  row_id("99999999999999999999") is None
    """
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    number = int(text)
    return number if number <= MAX_ROW_ID else None


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime in, the same out, on every database.

    SQLite stores datetimes as naive text, so values are converted to UTC and made naive on the
    way in, and made aware again on the way out. A naive datetime is refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UtcDateTime column; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSON on SQLite, JSONB on PostgreSQL (indexable, compact); both hold the same Python values.
JsonDocument: Any = JSON().with_variant(postgresql.JSONB(), "postgresql")
