"""JSON Schema pieces the admin API's route tables describe their answers with (OpenAPI 3.1).

Example::

    ACCOUNT = obj(id=INT, email=S, wards=NSTRINGS)
    Endpoint("GET", "/accounts", ..., answer=paged(ACCOUNT))
"""

from __future__ import annotations

from typing import Any

__all__ = ["INT", "NS", "NSTRINGS", "NTIME", "NUMBER", "STRINGS", "TIME", "S", "obj", "paged"]

S: dict[str, Any] = {"type": "string"}
NS: dict[str, Any] = {"type": ["string", "null"]}
STRINGS: dict[str, Any] = {"type": "array", "items": S}
NSTRINGS: dict[str, Any] = {"type": ["array", "null"], "items": S}
TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
NTIME: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
INT: dict[str, Any] = {"type": "integer"}
NUMBER: dict[str, Any] = {"type": "number"}


def obj(**properties: Any) -> dict[str, Any]:
    """An object with exactly these properties, all required."""
    return {"type": "object", "properties": properties, "required": sorted(properties)}


def paged(item: dict[str, Any]) -> dict[str, Any]:
    """A page of a list: its items and the cursor of the next page (None at the end)."""
    return obj(items={"type": "array", "items": item}, next_cursor={"type": ["integer", "null"]})
