"""Parsing real and spec payloads, and writing what the built-in server sends."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import pytest

from city.open311.errors import ErrorDetail, InvalidResponse
from city.open311.formats import (
    parse_datetime,
    parse_errors,
    parse_requests,
    parse_service_definition,
    parse_services,
    parse_submit_results,
    parse_token_results,
    parse_updates,
    write_errors,
    write_requests,
    write_service_definition,
    write_services,
)
from tests.city.open311.conftest import BOSTON, FIXTURES

CFA = FIXTURES / "codeforamerica_open311"
SPEC = FIXTURES / "spec_json"


def test_codeforamerica_services_keep_leading_zeros() -> None:
    services = parse_services((CFA / "services.xml").read_bytes(), "xml")
    assert len(services) == 36
    assert services[0].service_code == "001"
    assert services[0].group == "Litter Receptacles"
    assert services[0].metadata is False
    assert services[0].keywords == ()
    assert services[0].description.endswith("Violators will be cited.")
    assert services[-1].service_code == "379"


def test_spec_services_json_keywords_split() -> None:
    services = parse_services((SPEC / "services.json").read_bytes(), "json")
    assert [s.service_code for s in services] == ["001", "002", "003"]
    assert services[0].keywords == ("lorem", "ipsum", "dolor")
    assert services[0].metadata is True


def test_spec_invalid_json_with_leading_zero_numbers_is_repaired() -> None:
    body = (
        b'[{"service_code":001,"service_name":"Cans","metadata":true,"note":"x 007 y","lat":0.5}]'
    )
    [service] = parse_services(body, "json")
    assert service.service_code == "001"
    assert service.service_name == "Cans"


@pytest.mark.parametrize(
    ("path", "fmt"),
    [(CFA / "service_definition.xml", "xml"), (SPEC / "service_definition.json", "json")],
)
def test_service_definitions(path, fmt) -> None:
    definition = parse_service_definition(path.read_bytes(), fmt)
    assert definition.service_code == "DMV66"
    first = definition.attributes[0]
    assert (first.code, first.datatype, first.required, first.variable, first.order) == (
        "WHISHETN",
        "singlevaluelist",
        True,
        True,
        1,
    )
    assert [(v.key, v.name) for v in first.values] == [("123", "Ford"), ("124", "Chrysler")]


def test_spec_definition_multivaluelist_and_informational_attribute() -> None:
    definition = parse_service_definition((SPEC / "service_definition.json").read_bytes(), "json")
    damage, notice = definition.attributes[1], definition.attributes[2]
    assert damage.datatype == "multivaluelist" and [v.key for v in damage.values] == [
        "window",
        "tyre",
        "bodywork",
    ]
    assert notice.variable is False and notice.datatype == "text"


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        (CFA / "post_service_request.xml", "xml"),
        (SPEC / "post_service_request_response_id.json", "json"),
    ],
)
def test_post_answer_with_id(path, fmt) -> None:
    [result] = parse_submit_results(path.read_bytes(), fmt)
    assert result.service_request_id == "293944"
    assert result.token is None and result.account_id is None
    assert result.service_notice and "The City will inspect" in result.service_notice


def test_post_answer_with_token() -> None:
    [result] = parse_submit_results(
        (SPEC / "post_service_request_response_token.json").read_bytes(), "json"
    )
    assert (result.service_request_id, result.token) == (None, "12345")


@pytest.mark.parametrize(
    ("path", "fmt"),
    [(CFA / "request_id_from_token.xml", "xml"), (SPEC / "request_id_from_token.json", "json")],
)
def test_request_id_from_token(path, fmt) -> None:
    [result] = parse_token_results(path.read_bytes(), fmt)
    assert (result.service_request_id, result.token) == ("638344", "12345")


@pytest.mark.parametrize(
    ("path", "fmt"),
    [(CFA / "service_requests.xml", "xml"), (SPEC / "service_requests.json", "json")],
)
def test_service_requests(path, fmt) -> None:
    first, second = parse_requests(path.read_bytes(), fmt)
    assert (first.service_request_id, first.status, first.status_notes) == (
        "638344",
        "closed",
        "Duplicate request.",
    )
    assert second.status == "open" and second.status_notes is None
    assert first.service_code == "006"
    assert first.description is None and first.agency_responsible is None
    assert first.requested_datetime == datetime(2010, 4, 14, 14, 37, 38, tzinfo=UTC)
    assert first.expected_datetime == datetime(
        2010, 4, 15, 6, 37, 38, tzinfo=timezone(timedelta(hours=-8))
    )
    assert first.address_id == "545483" and first.zipcode == "94122"
    assert first.lat == pytest.approx(37.762221815) and first.long == pytest.approx(-122.4651145)
    assert first.media_url is not None and not first.media_url.endswith(" ")


def test_single_request_xml() -> None:
    [request] = parse_requests((CFA / "get_service_request.xml").read_bytes(), "xml")
    assert request.service_request_id == "638344"


@pytest.mark.parametrize(
    ("path", "fmt"),
    [(CFA / "service_requests_empty.xml", "xml"), (SPEC / "service_requests_empty.json", "json")],
)
def test_empty_lists(path, fmt) -> None:
    assert parse_requests(path.read_bytes(), fmt) == []


@pytest.mark.parametrize(
    ("path", "fmt", "code"),
    [
        (CFA / "get_service_request_not_found.xml", "xml", "404"),
        (SPEC / "errors_not_found.json", "json", "404"),
        (SPEC / "errors.json", "json", "403"),
    ],
)
def test_error_arrays(path, fmt, code) -> None:
    [error] = parse_errors(path.read_bytes(), fmt)
    assert error.code == code and error.description


def test_bare_error_element_after_an_http_status_line() -> None:
    [error] = parse_errors((CFA / "403.xml").read_bytes(), "xml")
    assert error.description == "Invalid api_key received -- can't proceed with create_request."


def test_unreadable_error_body_is_kept_as_text() -> None:
    [error] = parse_errors(b"<html>Bad gateway</html", "json")
    assert "Bad gateway" in error.description


def test_updates_extension() -> None:
    first, second = parse_updates(
        (FIXTURES / "updates_extension/servicerequestupdates.xml").read_bytes(), "xml"
    )
    assert (first.update_id, first.service_request_id, first.status) == (
        "9001",
        "880001",
        "in_progress",
    )
    assert first.external_status_code == "ASSIGNED" and first.media_url is None
    assert second.updated_datetime == datetime(2026, 12, 1, 12, 40, tzinfo=UTC)


def test_all_boston_records() -> None:
    raw = json.loads(BOSTON.read_bytes())
    requests = parse_requests(BOSTON.read_bytes(), "json")
    assert len(requests) == len(raw) == 1000
    assert Counter(r.service_name for r in requests) == {
        "Illegal Parking": 200,
        "Sidewalk Not Shoveled": 200,
        "Abandoned Vehicle": 200,
        "Unsafe Dangerous Conditions": 200,
        "Other": 200,
    }
    assert [r.service_request_id for r in requests] == [r["service_request_id"] for r in raw]
    assert len({r.service_request_id for r in requests}) == 1000
    assert Counter(r.status for r in requests) == Counter(r["status"] for r in raw)
    for parsed, source in zip(requests, raw, strict=True):
        assert (
            parsed.requested_datetime is not None and parsed.requested_datetime.tzinfo is not None
        )
        assert parsed.requested_datetime == datetime.fromisoformat(source["requested_datetime"])
        assert parsed.updated_datetime == datetime.fromisoformat(source["updated_datetime"])
        assert parsed.status_notes == ((source.get("status_notes") or "").strip() or None)
        assert parsed.media_url == source.get("media_url")
        assert parsed.lat == source["lat"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-15T09:00:00Z", datetime(2025, 3, 15, 9, tzinfo=UTC)),
        ("2025-03-15T11:00:00+02:00", datetime(2025, 3, 15, 9, tzinfo=UTC)),
        ("2025-03-15T09:00:00", datetime(2025, 3, 15, 9, tzinfo=UTC)),
        ("2025-03-15 09:00:00.250", datetime(2025, 3, 15, 9, 0, 0, 250000, tzinfo=UTC)),
        ("2025-03-15", datetime(2025, 3, 15, tzinfo=UTC)),
        ("not a date", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_datetime(text, expected) -> None:
    assert parse_datetime(text) == expected


def test_dtd_is_refused() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><services>&lol;</services>'
    with pytest.raises(InvalidResponse, match="DTD"):
        parse_services(bomb, "xml")


def test_broken_bodies_raise_invalid_response() -> None:
    with pytest.raises(InvalidResponse):
        parse_requests(b"{not json", "json")
    with pytest.raises(InvalidResponse):
        parse_requests(b"<service_requests><request>", "xml")
    with pytest.raises(InvalidResponse):
        parse_requests(b'"just a string"', "json")


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_written_bodies_read_back(fmt) -> None:
    services = parse_services((CFA / "services.xml").read_bytes(), "xml")
    assert parse_services(write_services(services, fmt), fmt) == services
    definition = parse_service_definition((SPEC / "service_definition.json").read_bytes(), "json")
    assert parse_service_definition(write_service_definition(definition, fmt), fmt) == definition
    requests = parse_requests((SPEC / "service_requests.json").read_bytes(), "json")
    assert parse_requests(write_requests(requests, fmt), fmt) == requests
    errors = [ErrorDetail("400", "service_code is required")]
    assert parse_errors(write_errors(errors, fmt), fmt) == errors
