"""Keyset paging for the staff lists: ``limit`` rows after a cursor, and the cursor for the next.

A cursor is the id of the last row shown, so a page does not shift when rows are added before
it (as an offset would). The HTTP layer checks the numbers; this module only slices.

Example::

    rows = await session.scalars(query.where(Model.id < before).limit(limit + 1))
    page = Page.of(list(rows), limit, key=lambda row: row.id)
    page.items, page.next_cursor     # at most ``limit`` rows, and None on the last page
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "Page"]

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: int | None

    @classmethod
    def of(cls, rows: Sequence[T], limit: int, *, key: Callable[[T], int]) -> Page[T]:
        """The first ``limit`` of ``rows`` (fetched as ``limit + 1`` to know if more follow)."""
        items = list(rows[:limit])
        more = len(rows) > limit and items
        return cls(items=items, next_cursor=key(items[-1]) if more else None)
