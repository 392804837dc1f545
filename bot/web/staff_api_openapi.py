"""The OpenAPI 3.1 document of the admin API, written from its route table.

Each endpoint's permission, ward scope, body, query and answer come from its ``Endpoint``, so
the document cannot say anything the server does not do (``tests/web/test_staff_api_openapi.py``
also checks that every mounted route is in it, and nothing else).

Example::

    document(ENDPOINTS, "/api/v1")["paths"]["/api/v1/accounts"]["get"]["x-permission"]
    # 'accounts.manage'
"""

from __future__ import annotations

import re
from typing import Any

from bot.web.staff_api_table import Endpoint

__all__ = ["document", "openapi_path"]

_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}
_SCOPES = {
    "city": "city-wide accounts only",
    "ward": "answers only within the caller's wards",
    "self": "the caller's own session",
    "public": "public data, no sign-in",
}


def openapi_path(prefix: str, path: str) -> str:
    """aiohttp's ``/accounts/{id:[^/]+}`` as OpenAPI's ``/api/v1/accounts/{id}``."""
    return prefix + re.sub(r"\{(\w+):[^}]*\}+", r"{\1}", _balanced(path))


def _balanced(path: str) -> str:
    # A pattern with a {n,m} quantifier inside it: drop the quantifiers first.
    return re.sub(r"\{\d+(,\d*)?\}", "", path)


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


# The HTTP server refuses a request it cannot read (a request line over 8 KB, a header it
# cannot parse) before any route runs, in plain text: every operation can get that 400.
_BAD_REQUEST = {
    "description": (
        "the input is wrong (the message says which field); a request the HTTP server cannot "
        "read at all (a request line over 8 KB) is refused in text/plain"
    ),
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}},
        "text/plain": {"schema": {"type": "string"}},
    },
}


# One server-sent event, as a client reads it off the stream (the data is JSON text).
_EVENT = {
    "type": "object",
    "properties": {
        "event": {"type": "string"},
        "data": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
}


def _answer(endpoint: Endpoint) -> dict[str, Any]:
    content: dict[str, Any] = {}
    for media_type in endpoint.media_types:
        schema = (
            dict(endpoint.answer)
            if media_type == "application/json"
            else _EVENT
            if media_type == "text/event-stream"
            else {"type": "string"}
        )
        content[media_type] = {"schema": schema}
    return {"description": "done", "content": content}


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    who = (
        "anyone"
        if not endpoint.signed_in
        else f"permission `{endpoint.permission.value}`"
        if endpoint.permission
        else "any signed-in caller"
    )
    operation: dict[str, Any] = {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary,
        "description": f"Who may call it: {who}; scope: {_SCOPES[endpoint.scope]}.",
        "tags": [endpoint.tag],
        "x-permission": endpoint.permission.value if endpoint.permission else None,
        "x-scope": endpoint.scope,
        "responses": {str(endpoint.status): _answer(endpoint), "400": _BAD_REQUEST},
    }
    if endpoint.signed_in:
        operation["security"] = [{"session": []}, {"token": []}]
        operation["responses"]["401"] = _error("not signed in, or the session or token is no good")
        operation["responses"]["403"] = _error("the roles or wards do not allow it, or no CSRF")
    else:
        operation["security"] = []
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"\{([A-Za-z_]\w*)", endpoint.path)
    ]
    if params:
        operation["responses"]["404"] = _error("there is no such thing (the message says which)")
    for status, meaning in endpoint.refusals.items():
        operation["responses"][str(status)] = _error(meaning)
    params += [
        {"name": f.name, "in": "query", "required": f.required, "schema": f.schema()}
        for f in endpoint.query
    ]
    if params:
        operation["parameters"] = params
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {f.name: f.schema() for f in endpoint.body},
                        "required": [f.name for f in endpoint.body if f.required],
                        "additionalProperties": False,
                    }
                }
            },
        }
        operation["responses"]["413"] = _error("the body is larger than 64 KB")
        operation["responses"]["415"] = _error("the body is not application/json")
    return operation


def document(endpoints: tuple[Endpoint, ...], prefix: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(openapi_path(prefix, endpoint.path), {})[endpoint.method.lower()] = (
            _operation(endpoint)
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "citybot admin API",
            "version": "1",
            "description": (
                "Staff accounts, API tokens, the audit log and service requests. Sign in with "
                "POST /api/v1/session (a session cookie; send its CSRF token in X-CSRF-Token "
                "with every change) or send an API token as 'Authorization: Bearer cbt_...'. "
                'Errors are {"error": {"code", "message"}}; lists are paged with limit '
                "and cursor (the next_cursor of the page before)."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": _ERROR},
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "citybot_staff_session"},
                "token": {"type": "http", "scheme": "bearer"},
            },
        },
    }
