"""The public open data over real HTTP, on SQLite and PostgreSQL: no personal data or free text in
any column, the 250 m grid and its fewer-than-5 rule, paging, CSV, bad input, the performance
figures with suppression and the disparity interval, the equity watch."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from bot.web.open_data import MAX_PAGE
from staff.analytics_rollup import REFRESH_LOCK, RefreshReport
from staff.open_data_rows import COLUMNS, GRID_METRES
from staff.transport_reliability import PROBLEMS
from storage.models import (
    AggregateAnswer,
    AuditLog,
    RequestStatusChange,
    Resident,
    ResidentAddress,
    Submission,
    TrackedRequest,
)
from tests.pothole_report import pothole_submission
from tests.storage.databases import postgres_database
from tests.web.staff_members import StaffHouse

API = "/api/v1/open-data"
# In a month long past, so every request is settled (closed, or open long past its target).
MONTH = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
# A point in ward 94 (Khayelitsha) and one far from it.
KHAYELITSHA = (-34.0363, 18.6776)
SEA_POINT = (-33.9149, 18.3875)
NAME, PHONE, STREET = "Thandiwe Mokoena", "+27821234567", "14 Lwandle Street"


# Every test runs on SQLite; those whose SQL differs between the databases (the grid's cells, the
# rollup's sums, the streaming cursor) on PostgreSQL too.
BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(params=["sqlite"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/citybot.sqlite3"
    else:
        async with postgres_database() as url:
            yield url


async def add_request(
    house: StaffHouse,
    *,
    received: datetime = MONTH,
    service: str = "WATER-LEAK",
    ward: str | None = "94",
    area_type: str | None = "formal",
    point: tuple[float, float] | None = None,
    ack_hours: float | None = 2.0,
    close_hours: float | None = None,
) -> Submission:
    """A resident's report with everything personal a report can carry."""
    async with house.sessions() as session, session.begin():
        resident_id = await session.scalar(
            select(ResidentAddress.resident_id).where(ResidentAddress.address == PHONE)
        )
        if resident_id is None:
            resident = Resident(locale="xh")
            session.add(resident)
            await session.flush()
            session.add(ResidentAddress(resident_id=resident.id, channel="sms", address=PHONE))
            resident_id = resident.id
        count = await session.scalar(select(func.count()).select_from(Submission)) or 0
        submission = Submission(
            reference=f"CT-T{count:05d}",
            resident_id=resident_id,
            channel="sms",
            form_id="water_leak",
            form_version=1,
            service_code=service,
            locale="xh",
            answers={"name": NAME, "phone": PHONE, "details": f"Call {NAME} at {STREET}"},
            lat=point[0] if point else None,
            lon=point[1] if point else None,
            ward=ward,
            wards=[ward] if ward else [],
            area_type=area_type,
            address_string=STREET,
            status="filed" if ack_hours is not None else "pending",
            service_request_id=str(count + 1) if ack_hours is not None else None,
            created_at=received,
        )
        session.add(submission)
        await session.flush()
        if ack_hours is not None:
            closed = received + timedelta(hours=close_hours) if close_hours is not None else None
            session.add(
                TrackedRequest(
                    submission_id=submission.id,
                    service_request_id=str(count + 1),
                    status="closed" if closed else "open",
                    status_notes=f"Spoke to {NAME}",
                    acknowledged_at=received + timedelta(hours=ack_hours),
                    closed_at=closed,
                )
            )
        return submission


async def get(house: StaffHouse, path: str, **params: Any) -> tuple[int, Any, str]:
    member = house.anonymous()
    async with member.http.get(path, params=params) as response:
        text = await response.text()
        kind = response.headers.get("Content-Type", "")
        body = text
        if kind.startswith("application/json"):
            body = await response.json()
        return response.status, body, kind


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@BOTH
async def test_requests_carry_no_personal_data_and_no_free_text(house: StaffHouse) -> None:
    made = [await add_request(house, point=KHAYELITSHA, close_hours=30) for _ in range(5)]
    await add_request(house, ack_hours=None, ward=None, area_type=None)
    await house.services.rollup.refresh()

    status, page, _ = await get(house, f"{API}/requests")
    assert status == 200
    assert len(page["items"]) == 6
    status, text, kind = await get(house, f"{API}/requests.csv")
    assert status == 200 and kind.startswith("text/csv")
    rows = parse_csv(text)
    assert len(rows) == 6 and tuple(rows[0]) == COLUMNS
    for row in page["items"]:
        assert tuple(row) == COLUMNS
    published = f"{page}{text}"
    for secret in (NAME, "Thandiwe", PHONE, "821234567", STREET, "Lwandle", "Spoke", "xh", "sms"):
        assert secret not in published
    for submission in made:
        assert submission.reference not in published
    assert not {r["id"] for r in rows} & {str(s.id) for s in made}
    first = page["items"][0]
    assert first["service"] == "WATER-LEAK" and first["ward"] == "94"
    assert first["status"] == "closed" and first["demo"] is False
    assert first["received"] == "2026-03-02T08:00Z"
    assert first["closed"] == "2026-03-03T14:00Z"
    unplaced = page["items"][-1]
    assert (unplaced["ward"], unplaced["area_type"], unplaced["status"]) == (
        "unknown",
        "unknown",
        "received",
    )
    # The same public id from one download to the next.
    assert [r["id"] for r in rows] == [r["id"] for r in page["items"]]


@BOTH
async def test_points_snap_to_the_grid_only_in_cells_of_five(house: StaffHouse) -> None:
    for i in range(5):  # five pins a few metres apart: one cell
        await add_request(house, point=(KHAYELITSHA[0] + i * 1e-5, KHAYELITSHA[1]))
    for _ in range(4):
        await add_request(house, point=SEA_POINT, ward="54")
    await house.services.rollup.refresh()
    status, page, _ = await get(house, f"{API}/requests")
    assert status == 200
    placed = [r for r in page["items"] if r["ward"] == "94"]
    alone = [r for r in page["items"] if r["ward"] == "54"]
    centres = {(r["lat"], r["lon"]) for r in placed}
    assert len(centres) == 1
    lat, lon = centres.pop()
    # The centre of a 250 m cell is within half its diagonal of every pin in it, and not the pin.
    assert (lat, lon) != KHAYELITSHA
    assert abs(lat - KHAYELITSHA[0]) * 111_320 <= GRID_METRES / 2 + 1
    assert abs(lon - KHAYELITSHA[1]) * 111_320 * 0.83 <= GRID_METRES / 2 + 1
    # Four in a cell: published without their point.
    assert all(r["lat"] is None and r["lon"] is None for r in alone)

    await add_request(house, point=SEA_POINT, ward="54")
    await house.services.rollup.refresh()
    status, page, _ = await get(house, f"{API}/requests", ward="54")
    assert all(r["lat"] is not None for r in page["items"]) and len(page["items"]) == 5


async def test_paging_and_filters(house: StaffHouse) -> None:
    for day in range(7):
        await add_request(house, received=MONTH + timedelta(days=day), service="ROADS-POTHOLE")
    await add_request(house, service="WATER-LEAK", area_type="informal_settlement")
    seen: list[str] = []
    cursor: int | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, "service": "ROADS-POTHOLE"}
        if cursor is not None:
            params["cursor"] = cursor
        status, page, _ = await get(house, f"{API}/requests", **params)
        assert status == 200, page
        seen += [r["id"] for r in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 7
    status, page, _ = await get(
        house, f"{API}/requests", **{"from": "2026-03-03", "to": "2026-03-04"}
    )
    assert len(page["items"]) == 2
    status, page, _ = await get(house, f"{API}/requests", area_type="informal_settlement")
    assert [r["service"] for r in page["items"]] == ["WATER-LEAK"]
    status, text, kind = await get(house, f"{API}/requests", format="csv", ward="94")
    assert kind.startswith("text/csv") and len(parse_csv(text)) == 8


@pytest.mark.parametrize(
    ("path", "params", "says"),
    [
        ("requests", {"from": "2026-13-01"}, "from"),
        ("requests", {"to": "yesterday"}, "to"),
        ("requests", {"from": "2026-03-05", "to": "2026-03-01"}, "after"),
        ("requests", {"limit": str(MAX_PAGE + 1)}, "limit"),
        ("requests", {"area_type": "slum"}, "area_type"),
        ("requests", {"reference": "CT-ABCDEF"}, "reference"),
        ("performance", {"group": "district"}, "group"),
        ("performance", {"period": "day"}, "period"),
        ("performance.csv", {"from": "2026-02-30"}, "from"),
    ],
)
async def test_bad_input_gets_a_400_with_a_reason(
    house: StaffHouse, path: str, params: dict[str, str], says: str
) -> None:
    status, body, _ = await get(house, f"{API}/{path}", **params)
    assert status == 400
    assert says in body["error"]["message"]


@BOTH
async def test_performance_figures_suppression_and_disparity(house: StaffHouse) -> None:
    informal = [10, 20, 30, 40, 50, 60]
    formal = [5, 10, 15, 20, 25, 30]
    for hours in informal:
        await add_request(house, area_type="informal_settlement", close_hours=hours)
    for hours in formal:
        await add_request(house, area_type="formal", close_hours=hours)
    for _ in range(3):
        await add_request(house, area_type="mixed", close_hours=5)
    for _ in range(5):
        await add_request(house, area_type=None, ward=None, ack_hours=None)
    await house.services.rollup.refresh()

    status, body, _ = await get(house, f"{API}/performance", group="area_type", period="month")
    assert status == 200, body
    assert (body["group"], body["period"], body["demo"]) == ("area_type", "month", False)
    rows = {r["key"]: r for r in body["rows"]}
    assert set(rows) == {"informal_settlement", "formal", "mixed", "unknown"}
    assert {r["period_start"] for r in body["rows"]} == {"2026-03-01"}
    # Three requests: shown as suppressed, with no figures.
    assert rows["mixed"]["suppressed"] is True and rows["mixed"]["count"] is None
    assert rows["mixed"]["close_hours_p50"] is None
    # Never acknowledged, place unknown: counted, and no time figures.
    assert rows["unknown"]["count"] == 5 and rows["unknown"]["ack_hours_p50"] is None
    inf, fml = rows["informal_settlement"], rows["formal"]
    assert inf["count"] == 6 and inf["suppressed"] is False
    assert inf["close_hours_p50"] == pytest.approx(35, rel=0.15)
    assert fml["close_hours_p50"] == pytest.approx(17.5, rel=0.15)
    assert inf["ack_hours_p50"] == pytest.approx(2, rel=0.15)
    # WATER-LEAK's target is 48 h: all formal ones in time, four of six informal ones.
    assert fml["closed_within_target"] == 1.0
    assert inf["closed_within_target"] == pytest.approx(4 / 6, abs=0.001)
    [disparity] = body["disparity"]
    assert disparity["key"] == "all" and disparity["suppressed"] is False
    assert (disparity["informal_count"], disparity["formal_count"]) == (6, 6)
    # The ratio of the published medians; each is read off a histogram, so within its buckets'
    # width of the exact figure (35 / 17.5 = 2).
    assert disparity["ratio"] == pytest.approx(
        inf["close_hours_p50"] / fml["close_hours_p50"], rel=0.02
    )
    assert disparity["ratio"] == pytest.approx(2.0, rel=0.3)
    assert disparity["ci_low"] <= disparity["ratio"] <= disparity["ci_high"]

    status, body, _ = await get(house, f"{API}/performance", group="ward", service="WATER-LEAK")
    assert {r["key"] for r in body["rows"]} == {"94", "unknown"}
    assert [d["key"] for d in body["disparity"]] == ["94"]

    status, text, kind = await get(house, f"{API}/performance.csv", group="service")
    assert kind.startswith("text/csv")
    [row] = parse_csv(text)
    assert row["key"] == "WATER-LEAK" and row["count"] == "20" and row["suppressed"] == "false"
    status, text, _ = await get(house, f"{API}/performance", format="csv", part="disparity")
    assert parse_csv(text)[0]["ratio"] == str(disparity["ratio"])


async def test_a_refresh_redoes_only_what_changed(house: StaffHouse) -> None:
    rollup = house.services.rollup
    await add_request(house, close_hours=3)
    first = await rollup.refresh()
    assert first.periods == 2 and first.requests == 1  # March's week and month
    # Nothing new: only the weeks and months of the last fortnight (empty here) are redone.
    quiet = await rollup.refresh()
    assert quiet.requests == 0
    await add_request(house, received=MONTH + timedelta(days=40), close_hours=3)
    _, body, _ = await get(house, f"{API}/performance", group="service")
    assert [r["period_start"] for r in body["rows"]] == ["2026-03-01"]
    await rollup.refresh()
    _, body, _ = await get(house, f"{API}/performance", group="service")
    assert [r["period_start"] for r in body["rows"]] == ["2026-03-01", "2026-04-01"]


async def slow_ward(house: StaffHouse, month: datetime, *, slower: float) -> None:
    for i in range(5):
        await add_request(house, received=month, close_hours=10 + i, area_type="formal")
        await add_request(
            house, received=month, close_hours=(10 + i) * slower, area_type="informal_settlement"
        )


@BOTH
async def test_equity_alert_after_two_periods_above_the_threshold(house: StaffHouse) -> None:
    await slow_ward(house, MONTH, slower=3)
    await house.services.rollup.refresh()
    analyst = await house.member("ana@city.gov", ["analyst"])
    answer = await analyst.call("GET", "/api/v1/equity-alerts")
    assert answer.status == 200 and answer.body["items"] == []
    assert answer.body["threshold"] == 1.5

    await slow_ward(house, datetime(2026, 4, 6, 8, tzinfo=UTC), slower=2.5)
    await house.services.rollup.refresh()
    answer = await analyst.call("GET", "/api/v1/equity-alerts")
    [alert] = answer.body["items"]
    assert (alert["service"], alert["ward"], alert["period"]) == ("WATER-LEAK", "94", "month")
    assert (alert["previous_start"], alert["period_start"]) == ("2026-03-01", "2026-04-01")
    assert alert["ratio"] == pytest.approx(2.5, rel=0.2) and alert["current"] is True
    async with house.sessions() as session:
        actions = list(await session.scalars(select(AuditLog.action)))
    assert actions.count("analytics.equity_alerts") == 2

    elsewhere = await house.member("ward9@city.gov", ["analyst"], wards=["9"])
    answer = await elsewhere.call("GET", "/api/v1/equity-alerts")
    assert answer.status == 200 and answer.body["items"] == []
    agent = await house.member("agent@city.gov", ["agent"])
    assert (await agent.call("GET", "/api/v1/equity-alerts")).status == 403
    assert (await house.anonymous().call("GET", "/api/v1/equity-alerts")).status == 401

    _, metrics, _ = await get(house, "/metrics")
    assert "citybot_equity_alerts 1.0" in metrics


async def test_metadata_and_page(house: StaffHouse) -> None:
    status, body, _ = await get(house, f"{API}/metadata.json")
    assert status == 200 and body["@type"] == "dcat:Catalog"
    requests, performance, transport = body["dataset"]
    assert requests["license"] == "https://creativecommons.org/licenses/by/4.0/"
    assert [f["name"] for f in requests["fields"]] == list(COLUMNS)
    assert all(
        f["description"] for f in requests["fields"] + performance["fields"] + transport["fields"]
    )
    assert {d["mediaType"] for d in requests["distribution"]} == {"application/json", "text/csv"}
    # Issue 18's dataset: listed with its fields, both forms served where the catalog says.
    assert [f["name"] for f in transport["fields"]] == [
        "table",
        "group",
        "reports",
        "suppressed",
        *PROBLEMS,
    ]
    for distribution in transport["distribution"]:
        path = distribution["accessURL"].removeprefix(house.services.settings.public_url)
        status, _, kind = await get(house, path)
        assert status == 200 and kind.startswith(distribution["mediaType"]), path
    assert requests["accrualPeriodicity"]
    status, page, kind = await get(house, "/open-data")
    assert status == 200 and kind.startswith("text/html")
    assert "<script" not in page and "style=" not in page
    assert "250 metre" in page and f"{API}/requests.csv" in page
    assert f"{API}/transport.csv" in page
    _, index, _ = await get(house, "/api")
    assert f"{API}/performance" in index and "/open-data" in index


async def add_bus_reports(house: StaffHouse, count: int, problem: str, disability: str) -> None:
    """Issue 18's reports, each from its own resident, with a disability answer."""
    async with house.sessions() as session, session.begin():
        done = await session.scalar(select(func.count()).select_from(Submission)) or 0
        for n in range(count):
            resident = Resident(locale="en")
            session.add(resident)
            await session.flush()
            submission = Submission(
                **pothole_submission(
                    f"CT-B{done + n:05d}",
                    form_id="transport_reliability",
                    service_code="TRANSPORT-RELIABILITY",
                    answers={"operator": "metrorail", "problem": problem},
                    area_type="formal",
                    resident_id=resident.id,
                )
            )
            session.add(submission)
            await session.flush()
            session.add(
                AggregateAnswer(
                    submission_id=submission.id,
                    resident_id=resident.id,
                    form_id="transport_reliability",
                    step_id="disability",
                    value=disability,
                    special=True,
                )
            )


@BOTH
async def test_transport_figures_as_json_and_as_csv_row_for_row(house: StaffHouse) -> None:
    await add_bus_reports(house, 12, "late", "disabled")
    await add_bus_reports(house, 11, "late", "not_disabled")
    await add_bus_reports(house, 3, "no_show", "prefer_not")
    status, document, kind = await get(house, f"{API}/transport")
    assert status == 200 and kind.startswith("application/json")
    assert _row_of(document, "disability", "disabled")["reports"] == 12
    # 3 are too few, and 11 would give them away as 26 - 12 - 11.
    assert _row_of(document, "disability", "prefer_not")["suppressed"]
    assert _row_of(document, "disability", "not_disabled")["suppressed"]
    expected = [
        {
            "table": table,
            "group": row["group"],
            "reports": "" if row["reports"] is None else str(row["reports"]),
            "suppressed": "true" if row["suppressed"] else "false",
            **{
                p: "" if (row["problems"] or {}).get(p) is None else str(row["problems"][p])
                for p in document["problems"]
            },
        }
        for table, rows in document["by"].items()
        for row in rows
    ]
    for path, params in ((f"{API}/transport.csv", {}), (f"{API}/transport", {"format": "csv"})):
        status, text, kind = await get(house, path, **params)
        assert status == 200 and kind.startswith("text/csv")
        assert parse_csv(text) == expected
    assert text.splitlines()[0] == "table,group,reports,suppressed," + ",".join(
        document["problems"]
    )
    assert "CT-" not in text


def _row_of(document: dict[str, Any], table: str, group: str) -> dict[str, Any]:
    (row,) = [r for r in document["by"][table] if r["group"] == group]
    return row


async def test_demo_rows_are_marked(house: StaffHouse) -> None:
    from forms_runtime.gazetteer import default_gazetteer
    from staff import demo_data

    async with house.sessions() as session, session.begin():
        made = await demo_data.seed(
            session, default_gazetteer(), requests=300, now=datetime.now(UTC)
        )
    assert made == 300
    await house.services.rollup.refresh()
    _, page, _ = await get(house, f"{API}/requests", limit=MAX_PAGE)
    assert len(page["items"]) == 300 and all(r["demo"] for r in page["items"])
    assert {r["area_type"] for r in page["items"]} >= {"formal", "informal_settlement"}
    _, body, _ = await get(house, f"{API}/performance")
    assert body["demo"] is True
    async with house.sessions() as session, session.begin():
        assert await demo_data.clear(session) == 300
    await house.services.rollup.rebuild()
    _, page, _ = await get(house, f"{API}/requests")
    assert page["items"] == []
    _, body, _ = await get(house, f"{API}/performance")
    assert body["rows"] == [] and body["demo"] is False


async def test_department_drill_down_and_the_analysts_export(house: StaffHouse) -> None:
    for _ in range(5):
        await add_request(house, service="WATER-LEAK", point=KHAYELITSHA, close_hours=5)
        await add_request(house, service="ELEC-OUTAGE", point=KHAYELITSHA, close_hours=5)
    await add_request(house, service="ELEC-OUTAGE", ward="9", point=SEA_POINT)
    await house.services.rollup.refresh()
    _, body, _ = await get(house, f"{API}/performance", group="department")
    assert {r["key"]: r["count"] for r in body["rows"]} == {
        "Energy": 6,
        "Water and Sanitation": 5,
    }
    _, body, _ = await get(house, f"{API}/performance", group="service", department="Energy")
    assert [r["key"] for r in body["rows"]] == ["ELEC-OUTAGE"]
    _, body, _ = await get(house, f"{API}/performance", group="ward", department="Energy")
    assert {r["key"]: r["count"] for r in body["rows"]} == {"94": 5, "9": None}

    analyst = await house.member("ana@city.gov", ["analyst"])
    answer = await analyst.call("GET", "/api/v1/analytics/requests.csv?department=Energy")
    assert answer.status == 200
    rows = parse_csv(answer.body)
    assert len(rows) == 6 and {r["department"] for r in rows} == {"Energy"}
    assert all(r["reference"].startswith("CT-") for r in rows)
    assert float(rows[0]["lat"]) == KHAYELITSHA[0]  # as stored: staff see the pin
    for secret in (NAME, PHONE, STREET, "Spoke"):
        assert secret not in answer.body
    scoped = await house.member("ward9@city.gov", ["analyst"], wards=["9"])
    answer = await scoped.call("GET", "/api/v1/analytics/requests.csv")
    assert [r["ward"] for r in parse_csv(answer.body)] == ["9"]
    async with house.sessions() as session:
        actions = list(await session.scalars(select(AuditLog.action)))
    assert actions.count("analytics.export") == 2
    agent = await house.member("agent@city.gov", ["agent"])
    assert (await agent.call("GET", "/api/v1/analytics/requests.csv")).status == 403


async def test_a_request_closed_later_is_counted_at_the_next_refresh(house: StaffHouse) -> None:
    made = [await add_request(house) for _ in range(5)]
    rollup = house.services.rollup
    await rollup.refresh()
    _, body, _ = await get(house, f"{API}/performance", group="service")
    assert body["rows"][0]["close_hours_p50"] is None
    async with house.sessions() as session, session.begin():
        for submission in made:
            tracked = await session.get(TrackedRequest, submission.id)
            assert tracked is not None
            tracked.status, tracked.closed_at = "closed", MONTH + timedelta(hours=20)
            session.add(
                RequestStatusChange(
                    submission_id=submission.id,
                    service_request_id=tracked.service_request_id,
                    status="closed",
                )
            )
    report = await rollup.refresh()
    assert report.requests == 5
    _, body, _ = await get(house, f"{API}/performance", group="service")
    assert body["rows"][0]["close_hours_p50"] == pytest.approx(20, rel=0.15)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_one_process_refreshes_at_a_time(house: StaffHouse) -> None:
    await add_request(house, close_hours=3)
    rollup = house.services.rollup
    async with house.services.engine.connect() as other:
        # Another worker process holding the refresh.
        await other.execute(text("SELECT pg_advisory_lock(:key)"), {"key": REFRESH_LOCK})
        assert await rollup.refresh() == RefreshReport(0, 0, 0)
        await other.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": REFRESH_LOCK})
    assert (await rollup.refresh()).requests == 1
