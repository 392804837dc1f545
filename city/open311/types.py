"""GeoReport v2 values as Python sees them, whatever the wire format (JSON or XML).

Identifiers (service codes, request ids, tokens) are always strings, so ``"006"`` keeps its
leading zeros. Datetimes are always aware; see ``city.open311.formats.parse_datetime``.

Example::

    ServiceRequestDraft(service_code="ROADS-POTHOLE", description="Pothole", lat=-34.03, long=18.67,
                        attributes={"size": "large", "damage": ["tyre", "window"]})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "Attribute",
    "AttributeValue",
    "Service",
    "ServiceDefinition",
    "ServiceRequest",
    "ServiceRequestDraft",
    "ServiceRequestUpdate",
    "SubmitResult",
]


@dataclass(frozen=True, slots=True)
class Service:
    service_code: str
    service_name: str
    description: str = ""
    # True when the service has a definition (extra attributes) at services/{code}.
    metadata: bool = False
    # realtime, batch (answers with a token) or blackbox.
    type: str = "realtime"
    keywords: tuple[str, ...] = ()
    group: str | None = None


@dataclass(frozen=True, slots=True)
class AttributeValue:
    key: str
    name: str


@dataclass(frozen=True, slots=True)
class Attribute:
    code: str
    # string, number, datetime, text, singlevaluelist, multivaluelist
    datatype: str
    description: str
    required: bool = False
    # False: informational text only; the resident is not asked.
    variable: bool = True
    order: int = 0
    datatype_description: str | None = None
    values: tuple[AttributeValue, ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceDefinition:
    service_code: str
    attributes: tuple[Attribute, ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceRequestDraft:
    """A report ready to POST. Personal fields are set only when the resident consented."""

    service_code: str
    description: str = ""
    lat: float | None = None
    long: float | None = None
    address_string: str | None = None
    address_id: str | None = None
    # code -> value; a list for multivaluelist attributes.
    attributes: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    media_url: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    email: str | None = None
    device_id: str | None = None
    account_id: str | None = None
    # A stable marker (e.g. "CT-7K2M9Q") appended to the description so the report can be found
    # again on the back end when a POST's outcome is unknown; it survives the 4,000-character cut.
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """The answer to a POST: an id, a token to exchange later, or (rarely) neither."""

    service_request_id: str | None = None
    token: str | None = None
    service_notice: str | None = None
    account_id: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceRequest:
    service_request_id: str
    status: str = "open"
    status_notes: str | None = None
    service_name: str | None = None
    service_code: str | None = None
    description: str | None = None
    agency_responsible: str | None = None
    service_notice: str | None = None
    requested_datetime: datetime | None = None
    updated_datetime: datetime | None = None
    expected_datetime: datetime | None = None
    address: str | None = None
    address_id: str | None = None
    zipcode: str | None = None
    lat: float | None = None
    long: float | None = None
    media_url: str | None = None
    token: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceRequestUpdate:
    """One entry of the mySociety ``servicerequestupdates`` extension."""

    update_id: str
    service_request_id: str
    status: str
    updated_datetime: datetime
    description: str | None = None
    media_url: str | None = None
    external_status_code: str | None = None
