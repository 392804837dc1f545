"""Reading and writing GeoReport v2 bodies in JSON and XML, tolerant of real servers.

Real endpoints differ from the spec in small ways, and each is accepted here on purpose:

- ids and codes may be numbers (``293944``) or strings; they always come out as strings, and the
  spec's own invalid JSON (``"service_code":001``) is repaired so ``"001"`` keeps its zeros;
- optional fields may be missing, ``null`` or empty elements (``<account_id/>``);
- datetimes may carry a time zone or not. **A datetime without a zone is taken as UTC**: the spec
  asks for W3C datetimes with a zone, and UTC is the only guess that never depends on where the
  bot runs. Unreadable datetimes become ``None`` rather than failing the whole list;
- XML services may put ``<attribute>`` straight under ``<service_definition>``; text may have
  junk before the first ``<`` (an HTTP status line, as in Code for America's fixtures);
- documents with a DTD are refused outright: no entity expansion, no external entities.

Example::

    requests = parse_requests(body, "json")   # -> [ServiceRequest(service_request_id="638344", ...)]
    body = write_requests(requests, "xml")    # -> b"<?xml ...><service_requests><request>..."
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any, Literal
from xml.etree import ElementTree

from city.open311.errors import ErrorDetail, InvalidResponse
from city.open311.types import (
    Attribute,
    AttributeValue,
    Service,
    ServiceDefinition,
    ServiceRequest,
    ServiceRequestUpdate,
    SubmitResult,
)

__all__ = [
    "Format",
    "decode",
    "parse_datetime",
    "parse_errors",
    "parse_requests",
    "parse_service_definition",
    "parse_services",
    "parse_submit_results",
    "parse_token_results",
    "parse_updates",
    "write_errors",
    "write_requests",
    "write_service_definition",
    "write_services",
    "write_submit_results",
    "write_token_results",
]

Format = Literal["json", "xml"]

# XML containers whose children form a list, and the name of one child when writing.
_LIST_ITEM = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
    "service_requests_updates": "request_update",
}


# -- decoding ---------------------------------------------------------------------------------

# A JSON string, or a bare number with a leading zero (which JSON forbids).
_LEADING_ZERO = re.compile(r'"(?:\\.|[^"\\])*"|(?<![\w.])(-?0\d+(?:\.\d+)?)(?![\w.])')


def _repair_leading_zeros(text: str) -> str:
    def quote(match: re.Match[str]) -> str:
        number = match.group(1)
        return f'"{number}"' if number is not None else match.group(0)

    return _LEADING_ZERO.sub(quote, text)


def _decode_json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidResponse(f"the answer is not UTF-8: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return json.loads(_repair_leading_zeros(text))
    except json.JSONDecodeError as exc:
        raise InvalidResponse(f"the answer is not valid JSON: {exc.msg} at {exc.pos}") from exc


def _element_value(element: ElementTree.Element) -> Any:
    children = list(element)
    if not children:
        text = element.text
        return text if text is not None and text.strip() != "" else None
    if element.tag in _LIST_ITEM:
        return [_element_value(child) for child in children]
    record: dict[str, Any] = {}
    for child in children:
        value = _element_value(child)
        if child.tag in record:
            previous = record[child.tag]
            record[child.tag] = (
                [*previous, value] if isinstance(previous, list) else [previous, value]
            )
        else:
            record[child.tag] = value
    return record


def _decode_xml(body: bytes) -> Any:
    start = body.find(b"<")
    if start < 0:
        raise InvalidResponse("the answer is not XML")
    body = body[start:]
    # Refuse any DTD: entity expansion ("billion laughs") and external entities need one.
    if re.search(rb"<!DOCTYPE|<!ENTITY", body, re.IGNORECASE):
        raise InvalidResponse("the XML answer declares a DTD, which is refused")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise InvalidResponse(f"the answer is not valid XML: {exc}") from exc
    value = _element_value(root)
    if root.tag == "error" and not isinstance(value, dict):
        # A bare <error>text</error>, as some servers send with a 403.
        return [{"code": None, "description": value}]
    return value


def decode(body: bytes, fmt: Format) -> Any:
    """Turn a body into plain Python (lists, dicts, strings, numbers) in either format."""
    return _decode_json(body) if fmt == "json" else _decode_xml(body)


# -- field helpers ----------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def _id(value: Any, what: str) -> str:
    text = _text(value)
    if text is None:
        raise InvalidResponse(f"a record has no {what}")
    return text


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _bool(value: Any, default: bool = False) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value)
    if text is None:
        return default
    return text.lower() in {"true", "1", "yes"}


def _int(value: Any, default: int = 0) -> int:
    text = _text(value)
    try:
        return int(float(text)) if text is not None else default
    except (ValueError, OverflowError):  # "abc", or "1e400" (float inf, which int refuses)
        return default


def parse_datetime(value: Any) -> datetime | None:
    """A W3C / ISO 8601 datetime as an aware datetime; naive ones are taken as UTC."""
    text = _text(value)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(text[:10]), time())
        except ValueError:
            return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _records(data: Any, *wrappers: str) -> list[Mapping[str, Any]]:
    """The list of records in an answer, whether bare, wrapped in an object, or a single object."""
    if isinstance(data, dict):
        for key in wrappers:
            if key in data:
                return _records(data[key])
        return [data]
    if isinstance(data, list):
        return [item for item in data if isinstance(item, dict)]
    if data is None:
        return []
    raise InvalidResponse(f"expected a list of records, got {type(data).__name__}")


# -- parsing ----------------------------------------------------------------------------------


def _keywords(value: Any) -> tuple[str, ...]:
    words: list[str | None] = (
        [_text(v) for v in value] if isinstance(value, list) else [*(_text(value) or "").split(",")]
    )
    return tuple(w.strip() for w in words if w and w.strip())


def parse_services(body: bytes, fmt: Format) -> list[Service]:
    services = []
    for record in _records(decode(body, fmt), "services", "service"):
        services.append(
            Service(
                service_code=_id(record.get("service_code"), "service_code"),
                service_name=_text(record.get("service_name"))
                or _id(record.get("service_code"), "service_code"),
                description=_text(record.get("description")) or "",
                metadata=_bool(record.get("metadata")),
                type=_text(record.get("type")) or "realtime",
                keywords=_keywords(record.get("keywords")),
                group=_text(record.get("group")),
            )
        )
    return services


def _values(value: Any) -> tuple[AttributeValue, ...]:
    items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
    result = []
    for item in items:
        if isinstance(item, dict) and item.get("key") is not None:
            key = _id(item.get("key"), "value key")
            result.append(AttributeValue(key=key, name=_text(item.get("name")) or key))
    return tuple(result)


def parse_service_definition(body: bytes, fmt: Format) -> ServiceDefinition:
    data = decode(body, fmt)
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, dict):
        raise InvalidResponse("a service definition must be an object")
    raw = data.get("attributes", data.get("attribute"))
    items = raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else []
    attributes = [
        Attribute(
            code=_id(item.get("code"), "attribute code"),
            datatype=(_text(item.get("datatype")) or "string").lower(),
            description=_text(item.get("description")) or "",
            required=_bool(item.get("required")),
            variable=_bool(item.get("variable"), default=True),
            order=_int(item.get("order")),
            datatype_description=_text(item.get("datatype_description")),
            values=_values(item.get("values")),
        )
        for item in items
        if isinstance(item, dict)
    ]
    attributes.sort(key=lambda a: a.order)
    return ServiceDefinition(
        service_code=_id(data.get("service_code"), "service_code"), attributes=tuple(attributes)
    )


def parse_submit_results(body: bytes, fmt: Format) -> list[SubmitResult]:
    return [
        SubmitResult(
            service_request_id=_text(r.get("service_request_id")),
            token=_text(r.get("token")),
            service_notice=_text(r.get("service_notice")),
            account_id=_text(r.get("account_id")),
        )
        for r in _records(decode(body, fmt), "service_requests", "request")
    ]


def parse_token_results(body: bytes, fmt: Format) -> list[SubmitResult]:
    """``tokens/{token}``: the id once the city has made one (missing while still queued)."""
    return parse_submit_results(body, fmt)


def _request(record: Mapping[str, Any]) -> ServiceRequest:
    return ServiceRequest(
        service_request_id=_id(record.get("service_request_id"), "service_request_id"),
        status=(_text(record.get("status")) or "open").lower(),
        status_notes=_text(record.get("status_notes")),
        service_name=_text(record.get("service_name")),
        service_code=_text(record.get("service_code")),
        description=_text(record.get("description")),
        agency_responsible=_text(record.get("agency_responsible")),
        service_notice=_text(record.get("service_notice")),
        requested_datetime=parse_datetime(record.get("requested_datetime")),
        updated_datetime=parse_datetime(record.get("updated_datetime")),
        expected_datetime=parse_datetime(record.get("expected_datetime")),
        address=_text(record.get("address")),
        address_id=_text(record.get("address_id")),
        zipcode=_text(record.get("zipcode")),
        lat=_float(record.get("lat")),
        long=_float(record.get("long")),
        media_url=_text(record.get("media_url")),
        token=_text(record.get("token")),
    )


def parse_requests(body: bytes, fmt: Format) -> list[ServiceRequest]:
    records = _records(decode(body, fmt), "service_requests", "requests", "request")
    return [_request(r) for r in records if _text(r.get("service_request_id")) is not None]


def parse_updates(body: bytes, fmt: Format) -> list[ServiceRequestUpdate]:
    """The mySociety ``servicerequestupdates`` extension; updates without a datetime are dropped."""
    updates = []
    for record in _records(decode(body, fmt), "service_requests_updates", "request_update"):
        when = parse_datetime(record.get("updated_datetime"))
        if when is None:
            continue
        updates.append(
            ServiceRequestUpdate(
                update_id=_id(record.get("update_id"), "update_id"),
                service_request_id=_id(record.get("service_request_id"), "service_request_id"),
                status=(_text(record.get("status")) or "open").lower(),
                updated_datetime=when,
                description=_text(record.get("description")),
                media_url=_text(record.get("media_url")),
                external_status_code=_text(record.get("external_status_code")),
            )
        )
    return updates


def parse_errors(body: bytes, fmt: Format) -> list[ErrorDetail]:
    """The spec's error array; anything unreadable becomes one error holding the raw text."""
    try:
        data = decode(body, fmt)
        records = _records(data, "errors", "error")
    except InvalidResponse:
        text = body.decode("utf-8", "replace").strip()
        return [ErrorDetail(code="", description=text[:500])] if text else []
    return [
        ErrorDetail(code=_text(r.get("code")) or "", description=_text(r.get("description")) or "")
        for r in records
    ]


# -- writing ----------------------------------------------------------------------------------


def _wire(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return value


def _xml_child(parent: ElementTree.Element, tag: str, value: Any) -> None:
    element = ElementTree.SubElement(parent, tag)
    if isinstance(value, list):
        item_tag = _LIST_ITEM.get(tag, "item")
        for item in value:
            _xml_child(element, item_tag, item)
    elif isinstance(value, dict):
        for key, inner in value.items():
            _xml_child(element, key, inner)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(_wire(value))


def _dump(root: str, value: Any, fmt: Format) -> bytes:
    if fmt == "json":
        text: str = json.dumps(value, ensure_ascii=False, default=_wire)
        return text.encode("utf-8")
    element = ElementTree.Element(root)
    items = value if isinstance(value, list) else None
    if items is not None:
        for item in items:
            _xml_child(element, _LIST_ITEM[root], item)
    else:
        for key, inner in value.items():
            _xml_child(element, key, inner)
    document: bytes = ElementTree.tostring(element, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + document


def write_services(services: Iterable[Service], fmt: Format) -> bytes:
    return _dump(
        "services",
        [
            {
                "service_code": s.service_code,
                "service_name": s.service_name,
                "description": s.description,
                "metadata": s.metadata,
                "type": s.type,
                "keywords": ", ".join(s.keywords),
                "group": s.group,
            }
            for s in services
        ],
        fmt,
    )


def write_service_definition(definition: ServiceDefinition, fmt: Format) -> bytes:
    attributes = []
    for a in definition.attributes:
        attribute: dict[str, Any] = {
            "variable": a.variable,
            "code": a.code,
            "datatype": a.datatype,
            "required": a.required,
            "datatype_description": a.datatype_description,
            "order": a.order,
            "description": a.description,
        }
        if a.values:
            attribute["values"] = [{"key": v.key, "name": v.name} for v in a.values]
        attributes.append(attribute)
    return _dump(
        "service_definition",
        {"service_code": definition.service_code, "attributes": attributes},
        fmt,
    )


def write_submit_results(results: Sequence[SubmitResult], fmt: Format) -> bytes:
    records = []
    for r in results:
        # The spec: a token *or* an id, never both.
        record: dict[str, Any] = (
            {"service_request_id": r.service_request_id}
            if r.service_request_id
            else {"token": r.token}
        )
        record["service_notice"] = r.service_notice
        record["account_id"] = r.account_id
        records.append(record)
    return _dump("service_requests", records, fmt)


def write_token_results(results: Sequence[SubmitResult], fmt: Format) -> bytes:
    return _dump(
        "service_requests",
        [{"service_request_id": r.service_request_id, "token": r.token} for r in results],
        fmt,
    )


def write_requests(requests: Iterable[ServiceRequest], fmt: Format) -> bytes:
    fields = [
        "service_request_id",
        "status",
        "status_notes",
        "service_name",
        "service_code",
        "description",
        "agency_responsible",
        "service_notice",
        "requested_datetime",
        "updated_datetime",
        "expected_datetime",
        "address",
        "address_id",
        "zipcode",
        "lat",
        "long",
        "media_url",
    ]
    return _dump(
        "service_requests",
        [{name: _wire(getattr(r, name)) for name in fields} for r in requests],
        fmt,
    )


def write_errors(errors: Iterable[ErrorDetail], fmt: Format) -> bytes:
    records = []
    for e in errors:
        # isdigit alone would let "²" through to int(), which refuses it.
        code: int | str = int(e.code) if e.code.isascii() and e.code.isdigit() else e.code
        records.append({"code": code, "description": e.description})
    return _dump("errors", records, fmt)
