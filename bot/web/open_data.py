"""Public open data: requests and service performance as JSON and CSV, their metadata, and a page
in plain words. No sign-in; the work is in ``staff.open_data_rows`` and ``staff.analytics``.

The API endpoints are rows of the admin API's table (``ENDPOINTS``, mounted and documented with
it, tag ``open-data``); ``add_routes`` adds the page at ``/open-data``. CSV answers are streamed a
few hundred rows at a time, so a download of every request holds one batch in memory.

Example::

    GET /api/v1/open-data/requests?ward=94&from=2026-11-01&limit=500
    GET /api/v1/open-data/requests.csv?service=WATER-LEAK
    GET /api/v1/open-data/performance?group=area_type&period=week
    GET /api/v1/equity-alerts                      (role analyst)
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from datetime import date
from html import escape
from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot.services import Services
from bot.web import staff_api_schemas as schemas
from bot.web.staff_api_table import ApiError, Call, Endpoint, Field
from staff import audit
from staff.analyst_export import EXPORT_COLUMNS, ExportFilter, export_rows
from staff.analytics import (
    AREA_TYPES,
    DEPARTMENTS,
    GROUPS,
    MIN_GROUP,
    OTHER_DEPARTMENT,
    PERIODS,
    SPECIAL_MIN_GROUP,
    PerformanceQuery,
    performance,
)
from staff.equity import equity_alerts
from staff.open_data_rows import COLUMNS, MIN_CELL, RowFilter, stream_rows
from staff.paging import Page
from staff.roles import Permission
from staff.transport_reliability import PROBLEMS as TRANSPORT_PROBLEMS
from staff.transport_reliability import transport_reliability
from storage.models import open_data_refresh

__all__ = ["DEFAULT_PAGE", "ENDPOINTS", "MAX_PAGE", "PAGE_PATH", "add_routes"]

PAGE_PATH = "/open-data"
DEFAULT_PAGE = 100
MAX_PAGE = 1000
_PREFIX = "/api/v1"
_LICENCE = "https://creativecommons.org/licenses/by/4.0/"
_CSV_BATCH = 500
_PERFORMANCE_COLUMNS = (
    "period_start",
    "key",
    "count",
    "suppressed",
    "ack_hours_p50",
    "ack_hours_p90",
    "close_hours_p50",
    "close_hours_p90",
    "closed_within_target",
)
_DISPARITY_COLUMNS = (
    "period_start",
    "key",
    "ratio",
    "ci_low",
    "ci_high",
    "informal_count",
    "formal_count",
    "suppressed",
)


# -- CSV -----------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


async def _csv(
    call: Call, filename: str, columns: Sequence[str], rows: AsyncIterator[Mapping[str, Any]]
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{filename}"',
        }
    )
    await response.prepare(call.request)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    written = 0
    async for row in rows:
        writer.writerow([_cell(row[c]) for c in columns])
        written += 1
        if written % _CSV_BATCH == 0:
            await response.write(buffer.getvalue().encode())
            buffer.seek(0)
            buffer.truncate()
    await response.write(buffer.getvalue().encode())
    await response.write_eof()
    return response


async def _each(rows: Iterable[Mapping[str, Any]]) -> AsyncIterator[Mapping[str, Any]]:
    for row in rows:
        yield row


def _wants_csv(call: Call) -> bool:
    return call.request.path.endswith(".csv") or call.query.get("format") == "csv"


def _dates(call: Call) -> tuple[date | None, date | None]:
    start, end = call.query.get("from"), call.query.get("to")
    if start is not None and end is not None and start > end:
        raise ApiError(400, "invalid_field", "from must not be after to")
    return start, end


# -- handlers ------------------------------------------------------------------------------


async def list_requests(call: Call) -> dict[str, Any] | web.StreamResponse:
    services = call.services
    start, end = _dates(call)
    where = RowFilter(
        start=start,
        end=end,
        service=call.query.get("service"),
        ward=call.query.get("ward"),
        area_type=call.query.get("area_type"),
    )
    rollup = services.rollup
    if _wants_csv(call):

        async def rows() -> AsyncIterator[Mapping[str, Any]]:
            async for _, row in stream_rows(
                services.analytics_reads,
                rollup.grid,
                services.open_data_key,
                where,
                zone=rollup.zone,
            ):
                yield row

        return await _csv(call, "requests.csv", COLUMNS, rows())
    limit = int(call.query.get("limit") or DEFAULT_PAGE)
    found = [
        pair
        async for pair in stream_rows(
            services.analytics_reads,
            rollup.grid,
            services.open_data_key,
            where,
            zone=rollup.zone,
            after=call.cursor,
            limit=limit + 1,
        )
    ]
    page = Page.of(found, limit, key=lambda pair: pair[0])
    return {"items": [row for _, row in page.items], "next_cursor": page.next_cursor}


async def get_performance(call: Call) -> dict[str, Any] | web.StreamResponse:
    start, end = _dates(call)
    query = PerformanceQuery(
        group=call.query.get("group", "area_type"),
        period=call.query.get("period", "month"),
        start=start,
        end=end,
        service=call.query.get("service"),
        department=call.query.get("department"),
    )
    async with call.services.analytics_reads() as session:
        answer = await performance(session, query)
    document = answer.as_dict()
    if not _wants_csv(call):
        return document
    if call.query.get("part") == "disparity":
        name = f"disparity-{answer.group}-{answer.period}.csv"
        return await _csv(call, name, _DISPARITY_COLUMNS, _each(document["disparity"]))
    name = f"performance-{answer.group}-{answer.period}.csv"
    return await _csv(call, name, _PERFORMANCE_COLUMNS, _each(document["rows"]))


async def get_transport(call: Call) -> dict[str, Any] | web.StreamResponse:
    async with call.services.analytics_reads() as session:
        document = await transport_reliability(session)
    if not _wants_csv(call):
        return document
    return await _csv(call, "transport.csv", _TRANSPORT_COLUMNS, _each(_transport_rows(document)))


def _transport_rows(document: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The three tables as one: a row per table and group, empty figures where suppressed."""
    for table, rows in document["by"].items():
        for row in rows:
            problems = row["problems"] or {}
            yield {
                "table": table,
                "group": row["group"],
                "reports": row["reports"],
                "suppressed": row["suppressed"],
                **{p: problems.get(p) for p in TRANSPORT_PROBLEMS},
            }


async def metadata(call: Call) -> dict[str, Any]:
    async with call.services.analytics_reads() as session:
        refreshed = await session.scalar(select(open_data_refresh.c.refreshed_at))
    return metadata_document(call.services.settings.public_url, refreshed)


async def list_equity_alerts(call: Call) -> dict[str, Any]:
    settings = call.services.settings
    async with call.services.analytics_reads() as session:
        alerts = await equity_alerts(
            session,
            threshold=settings.equity_threshold,
            period=settings.equity_period,
            wards=call.identity.wards,
        )
    # The audit row is a write: the primary's.
    async with call.services.session_factory() as session, session.begin():
        await audit.record(
            session,
            actor=call.identity.actor,
            action="analytics.equity_alerts",
            target=None,
            address=call.address,
            details={"alerts": len(alerts)},
        )
    return {
        "threshold": settings.equity_threshold,
        "period": settings.equity_period,
        "items": [a.as_dict() for a in alerts],
    }


async def analyst_export(call: Call) -> web.StreamResponse:
    services = call.services
    start, end = _dates(call)
    where = ExportFilter(
        rows=RowFilter(
            start=start,
            end=end,
            service=call.query.get("service"),
            ward=call.query.get("ward"),
            area_type=call.query.get("area_type"),
        ),
        department=call.query.get("department"),
        wards=call.identity.wards,
    )
    async with services.session_factory() as session, session.begin():
        await audit.record(
            session,
            actor=call.identity.actor,
            action="analytics.export",
            target=None,
            address=call.address,
            details={k: str(v) for k, v in call.query.items()},
        )
    rows = export_rows(services.analytics_reads, where, zone=services.rollup.zone)
    return await _csv(call, "requests-analyst.csv", EXPORT_COLUMNS, rows)


# -- metadata ------------------------------------------------------------------------------

REQUEST_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("id", "string", "an opaque id of the request, stable between downloads; not the reference"),
    ("service", "string", "the service code, e.g. ROADS-POTHOLE"),
    ("ward", "string", "the ward the request is in, or unknown"),
    ("suburb", "string", "the suburb or settlement, or unknown"),
    ("area_type", "string", "informal_settlement, mixed, formal or unknown"),
    ("received", "date-time", "when the resident's report was received (UTC, to the minute)"),
    ("acknowledged", "date-time", "when the city's system first showed it (empty: not yet)"),
    ("closed", "date-time", "when the city closed it (empty: still open)"),
    ("status", "string", "received, open, closed or rejected"),
    (
        "lat",
        "number",
        f"latitude of the centre of its 250 m grid cell; empty when the cell holds fewer "
        f"than {MIN_CELL} requests",
    ),
    ("lon", "number", "longitude of the same cell's centre, or empty"),
    ("demo", "boolean", "true for synthetic demonstration data, not a real report"),
)
PERFORMANCE_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("period_start", "date", "the first day of the week (a Monday) or month, city time"),
    ("key", "string", "the area type, ward or service the row is for"),
    ("count", "integer", "requests received in the period (empty when suppressed)"),
    ("suppressed", "boolean", "true when fewer than 5 requests: no figures are published"),
    ("ack_hours_p50", "number", "median hours from received to acknowledged"),
    ("ack_hours_p90", "number", "90th percentile hours from received to acknowledged"),
    ("close_hours_p50", "number", "median hours from received to closed (closed requests)"),
    ("close_hours_p90", "number", "90th percentile hours from received to closed"),
    (
        "closed_within_target",
        "number",
        "share of requests due (closed, or open past the target) closed within the "
        "service's target",
    ),
    (
        "ratio",
        "number",
        "disparity: informal settlements' median hours to close over formal areas'",
    ),
    ("ci_low", "number", "the lower end of the ratio's 95% bootstrap interval"),
    ("ci_high", "number", "the upper end of the ratio's 95% bootstrap interval"),
)


TRANSPORT_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("table", "string", "what the reports are counted by: area_type, gender or disability"),
    (
        "group",
        "string",
        "the area type of the stop; the gender the resident gave (woman, man, non_binary, "
        "another, prefer_not); disabled, not_disabled or prefer_not; not_stated where the "
        "resident answered nothing",
    ),
    ("reports", "integer", "transport reliability reports in the group (empty when suppressed)"),
    (
        "suppressed",
        "boolean",
        f"true when the group has fewer than {MIN_GROUP} reports ({SPECIAL_MIN_GROUP} reports "
        f"and {SPECIAL_MIN_GROUP} residents for disability), or its figure would give another "
        "away: no figures are published",
    ),
    ("no_show", "integer", "reports of a bus or train that did not come (empty: suppressed)"),
    ("late", "integer", "reports of one that came late"),
    ("full", "integer", "reports of one too full to get on"),
    ("could_not_board", "integer", "reports of one that could not be boarded (ramp, lift, steps)"),
    ("unsafe", "integer", "reports of one that was unsafe"),
)
_TRANSPORT_COLUMNS = tuple(name for name, _, _ in TRANSPORT_FIELDS)


def _fields(fields: Iterable[tuple[str, str, str]]) -> list[dict[str, str]]:
    return [{"name": n, "type": t, "description": d} for n, t, d in fields]


def metadata_document(public_url: str, refreshed: Any) -> dict[str, Any]:
    """The datasets described with DCAT's terms (JSON-LD), each field with its meaning."""
    base = public_url.rstrip("/")
    api = f"{base}{_PREFIX}/open-data"

    def distribution(title: str, url: str, media: str) -> dict[str, Any]:
        return {"@type": "dcat:Distribution", "title": title, "accessURL": url, "mediaType": media}

    common = {
        "license": _LICENCE,
        "rights": "CC BY 4.0: use it freely, saying where it comes from",
        "publisher": {"@type": "foaf:Agent", "name": "citybot"},
        "accrualPeriodicity": "http://purl.org/cld/freq/continuous",
        "spatial": "the city's wards",
        "modified": refreshed.isoformat() if refreshed is not None else None,
        "landingPage": f"{base}{PAGE_PATH}",
    }
    return {
        "@context": {
            "dcat": "http://www.w3.org/ns/dcat#",
            "dct": "http://purl.org/dc/terms/",
            "foaf": "http://xmlns.com/foaf/0.1/",
            "title": "dct:title",
            "description": "dct:description",
            "license": {"@id": "dct:license", "@type": "@id"},
            "rights": "dct:rights",
            "publisher": "dct:publisher",
            "name": "foaf:name",
            "accrualPeriodicity": {"@id": "dct:accrualPeriodicity", "@type": "@id"},
            "spatial": "dct:spatial",
            "modified": "dct:modified",
            "landingPage": {"@id": "dcat:landingPage", "@type": "@id"},
            "dataset": "dcat:dataset",
            "distribution": "dcat:distribution",
            "accessURL": {"@id": "dcat:accessURL", "@type": "@id"},
            "mediaType": "dcat:mediaType",
            "keyword": "dcat:keyword",
        },
        "@type": "dcat:Catalog",
        "title": "Service requests and service performance",
        "description": (
            "What residents reported through citybot and how long the city took to answer, "
            "published without personal data."
        ),
        "license": _LICENCE,
        "dataset": [
            {
                "@type": "dcat:Dataset",
                "title": "Service requests",
                "description": (
                    "One row per request: service, ward, suburb, area type, when it was received, "
                    "acknowledged and closed, and its status. No names, numbers, descriptions or "
                    "addresses; places are given as a 250 m grid cell, and only where the cell "
                    f"holds at least {MIN_CELL} requests."
                ),
                "keyword": ["service requests", "311", "open data"],
                **common,
                "distribution": [
                    distribution("JSON, paged", f"{api}/requests", "application/json"),
                    distribution("CSV, every row", f"{api}/requests.csv", "text/csv"),
                ],
                "fields": _fields(REQUEST_FIELDS),
            },
            {
                "@type": "dcat:Dataset",
                "title": "Service performance",
                "description": (
                    "Per week or month, by area type, ward or service: requests, median and 90th "
                    "percentile hours to acknowledge and to close, the share closed within the "
                    "service's target, and how much longer informal settlements wait than formal "
                    "areas (with a 95% bootstrap interval). Groups of fewer than 5 requests are "
                    "shown as suppressed."
                ),
                "keyword": ["service performance", "equity", "response times"],
                **common,
                "distribution": [
                    distribution("JSON", f"{api}/performance", "application/json"),
                    distribution("CSV", f"{api}/performance.csv", "text/csv"),
                ],
                "fields": _fields(PERFORMANCE_FIELDS),
            },
            {
                "@type": "dcat:Dataset",
                "title": "Public transport reliability",
                "description": (
                    "Residents' reports of a bus or train that did not come, came late, was too "
                    "full, could not be boarded or was unsafe, counted by the area type of the "
                    "stop, by gender and by disability status (optional answers, given after "
                    "the report, disability with its own consent). Counts only, all time; never "
                    "per person. Groups of fewer than 5 reports, or for disability fewer than "
                    "10 reports or 10 residents, are shown as suppressed, and a second figure "
                    "where one alone could be worked out from a total."
                ),
                "keyword": ["public transport", "reliability", "equity", "disability", "gender"],
                **common,
                "distribution": [
                    distribution("JSON", f"{api}/transport", "application/json"),
                    distribution("CSV", f"{api}/transport.csv", "text/csv"),
                ],
                "fields": _fields(TRANSPORT_FIELDS),
            },
        ],
    }


# -- the page ------------------------------------------------------------------------------


def _page(public_url: str) -> str:
    api = f"{_PREFIX}/open-data"
    rows = "".join(
        f"<tr><th scope='row'><code>{escape(n)}</code></th><td>{escape(d)}</td></tr>"
        for n, _, d in REQUEST_FIELDS
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>Open data: service requests and performance</title></head><body><main>"
        "<h1>Open data: service requests and how long they take</h1>"
        "<p>Every report residents make through citybot, and how long the city took to "
        "acknowledge and fix it, is published here for anyone to use, under the "
        f"<a href='{_LICENCE}'>Creative Commons Attribution 4.0</a> licence: use it freely, "
        "and say where it comes from.</p>"
        "<h2>What is in it</h2>"
        "<p>One row per request: what it was about (the service), where (ward, suburb, and "
        "whether it is an informal settlement or a formal area), when it was received, "
        "acknowledged and closed, and its status now.</p>"
        "<h2>What is left out, and why</h2>"
        "<ul><li>Nothing about the person who reported it: no name, phone number, channel or "
        "language, and not the reference number they were given.</li>"
        "<li>No words the resident typed: descriptions and addresses often name people.</li>"
        "<li>No exact location: a pin is moved to the centre of its 250 metre square, and left "
        f"out altogether where that square holds fewer than {MIN_CELL} requests, so that it "
        "cannot point at one house.</li>"
        "<li>Groups of fewer than 5 requests in the performance figures are marked "
        "<em>suppressed</em>, without figures.</li></ul>"
        "<h2>The performance figures</h2>"
        "<p>For each week or month, by area type, ward or service: how many requests, the "
        "median (half took less) and the 90th percentile (nine in ten took less) hours to "
        "acknowledge and to close, and the share closed within the service's target. The "
        "<em>disparity ratio</em> is the median time to close in informal settlements divided "
        "by that in formal areas: 1.5 means informal settlements wait half as long again. Its "
        "95% interval comes from resampling the requests (a bootstrap); where the interval "
        "includes 1, the difference may be chance. Requests whose place is not known are "
        "counted as <em>unknown</em>, never left out. The figures are brought up to date every "
        "few minutes. Rows marked <code>demo</code> are made-up demonstration data.</p>"
        "<h2>Get the data</h2><ul>"
        f"<li><a href='{api}/requests.csv'>Every request (CSV)</a> or "
        f"<a href='{api}/requests'>a page at a time (JSON)</a>; filter with <code>from</code>, "
        "<code>to</code> (dates), <code>service</code>, <code>ward</code> and "
        "<code>area_type</code>.</li>"
        f"<li><a href='{api}/performance.csv'>Performance by area type, by month (CSV)</a>; "
        f"<a href='{api}/performance?group=ward&amp;period=week'>by ward and week (JSON)</a>. "
        "<code>group</code> is area_type, ward or service; <code>period</code> week or month; "
        "<code>part=disparity</code> gives the disparity table as CSV.</li>"
        f"<li><a href='{api}/transport.csv'>Public transport reliability (CSV)</a> or "
        f"<a href='{api}/transport'>JSON</a>: reports of buses and trains that did not come, "
        "came late, were too full, could not be boarded or were unsafe, by the area type of the "
        "stop, by gender and by disability status; counts only, small groups suppressed "
        f"({MIN_GROUP}; {SPECIAL_MIN_GROUP} reports and {SPECIAL_MIN_GROUP} residents for "
        "disability).</li>"
        f"<li><a href='{api}/metadata.json'>The datasets' description (DCAT, JSON-LD)</a> and "
        f"the <a href='{_PREFIX}/openapi.json'>OpenAPI document</a>.</li></ul>"
        "<h2>The columns of a request</h2>"
        "<table><caption>Columns of the requests dataset</caption><thead><tr>"
        "<th scope='col'>Column</th><th scope='col'>Meaning</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        "</main></body></html>"
    )


def add_routes(app: web.Application, services: Services) -> None:
    """The page at /open-data (the API rows are mounted with the admin API's table)."""
    page = _page(services.settings.public_url)

    async def explain(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app.router.add_get(PAGE_PATH, explain)


# -- the table -----------------------------------------------------------------------------

_S, _NS, _INT = schemas.S, schemas.NS, schemas.INT
_NNUM: dict[str, Any] = {"type": ["number", "null"]}
_NINT: dict[str, Any] = {"type": ["integer", "null"]}
_BOOL: dict[str, Any] = {"type": "boolean"}
_DATES = (
    Field("from", "date", "from this day (city time), inclusive"),
    Field("to", "date", "to this day, inclusive"),
)
_SERVICE = Field("service", "string", "a service code, e.g. ROADS-POTHOLE", max_length=64)
_FORMAT = Field("format", "string", "json (the default) or csv", enum=("json", "csv"))
_DEPARTMENT = Field(
    "department",
    "string",
    "only this department's services",
    enum=(*DEPARTMENTS, OTHER_DEPARTMENT),
)
_REQUEST_QUERY = (
    *_DATES,
    _SERVICE,
    Field("ward", "string", "a ward, or unknown", max_length=32),
    Field("area_type", "string", "an area type", enum=AREA_TYPES),
)
_ROW = schemas.obj(
    id=_S,
    service=_S,
    ward=_S,
    suburb=_S,
    area_type=_S,
    received=schemas.TIME,
    acknowledged=schemas.NTIME,
    closed=schemas.NTIME,
    status=_S,
    lat=_NNUM,
    lon=_NNUM,
    demo=_BOOL,
)
_PERFORMANCE_QUERY = (
    Field("group", "string", "what a row is for (default area_type)", enum=GROUPS),
    Field("period", "string", "week or month (default month)", enum=PERIODS),
    *_DATES,
    _SERVICE,
    _DEPARTMENT,
)
_PERFORMANCE_ROW = schemas.obj(
    period_start=_S,
    key=_S,
    count=_NINT,
    suppressed=_BOOL,
    ack_hours_p50=_NNUM,
    ack_hours_p90=_NNUM,
    close_hours_p50=_NNUM,
    close_hours_p90=_NNUM,
    closed_within_target=_NNUM,
)
_DISPARITY_ROW = schemas.obj(
    period_start=_S,
    key=_S,
    ratio=_NNUM,
    ci_low=_NNUM,
    ci_high=_NNUM,
    informal_count=_NINT,
    formal_count=_NINT,
    suppressed=_BOOL,
)
_PERFORMANCE = schemas.obj(
    group=_S,
    period=_S,
    demo=_BOOL,
    rows={"type": "array", "items": _PERFORMANCE_ROW},
    disparity={"type": "array", "items": _DISPARITY_ROW},
)
_CSV_ANSWER: dict[str, Any] = {"type": "string", "description": "text/csv, streamed"}
_TRANSPORT_ROW = schemas.obj(
    group=_S,
    reports=_NINT,
    suppressed=_BOOL,
    problems={
        "type": ["object", "null"],
        "additionalProperties": _NINT,
        "description": "reports by what happened; null where suppressed",
    },
)
_TRANSPORT = schemas.obj(
    form=_S,
    problems={"type": "array", "items": _S},
    min_group=schemas.INT,
    special_min_group=schemas.INT,
    by=schemas.obj(
        area_type={"type": "array", "items": _TRANSPORT_ROW},
        gender={"type": "array", "items": _TRANSPORT_ROW},
        disability={"type": "array", "items": _TRANSPORT_ROW},
    ),
)
_ALERT = schemas.obj(
    service=_S,
    ward=_S,
    period=_S,
    period_start=_S,
    previous_start=_S,
    ratio=schemas.NUMBER,
    previous_ratio=schemas.NUMBER,
    ci_low=schemas.NUMBER,
    ci_high=schemas.NUMBER,
    informal_count=_INT,
    formal_count=_INT,
    current=_BOOL,
)


def _public(path: str, operation: str, summary: str, handler: Any, **kw: Any) -> Endpoint:
    return Endpoint(
        "GET",
        path,
        operation,
        summary,
        handler,
        signed_in=False,
        scope="public",
        tag="open-data",
        **kw,
    )


ENDPOINTS: tuple[Endpoint, ...] = (
    _public(
        "/open-data/requests",
        "openDataRequests",
        "Service requests without personal data, oldest first, paged (or all as CSV)",
        list_requests,
        query=(
            *_REQUEST_QUERY,
            _FORMAT,
            Field(
                "limit",
                "integer",
                f"rows per page (default {DEFAULT_PAGE})",
                minimum=1,
                maximum=MAX_PAGE,
            ),
            Field("cursor", "integer", "the next_cursor of the page before", minimum=0),
        ),
        answer=schemas.paged(_ROW),
        media_types=("application/json", "text/csv"),
    ),
    _public(
        "/open-data/requests.csv",
        "openDataRequestsCsv",
        "Every service request as CSV, streamed",
        list_requests,
        query=_REQUEST_QUERY,
        answer=_CSV_ANSWER,
        media_types=("text/csv",),
    ),
    _public(
        "/open-data/performance",
        "openDataPerformance",
        "Time to acknowledge and close, share within target and disparity, by week or month",
        get_performance,
        query=(
            *_PERFORMANCE_QUERY,
            _FORMAT,
            Field(
                "part", "string", "as CSV: rows (default) or disparity", enum=("rows", "disparity")
            ),
        ),
        answer=_PERFORMANCE,
        media_types=("application/json", "text/csv"),
    ),
    _public(
        "/open-data/performance.csv",
        "openDataPerformanceCsv",
        "The performance rows (or, with part=disparity, the disparities) as CSV",
        get_performance,
        query=(
            *_PERFORMANCE_QUERY,
            Field("part", "string", "rows (default) or disparity", enum=("rows", "disparity")),
        ),
        answer=_CSV_ANSWER,
        media_types=("text/csv",),
    ),
    _public(
        "/open-data/transport",
        "openDataTransport",
        "Public transport reliability reports by area type, gender and disability status; counts "
        "only, small groups suppressed (10 for disability)",
        get_transport,
        query=(_FORMAT,),
        answer=_TRANSPORT,
        media_types=("application/json", "text/csv"),
    ),
    _public(
        "/open-data/transport.csv",
        "openDataTransportCsv",
        "The transport reliability tables as CSV: a row per table and group",
        get_transport,
        answer=_CSV_ANSWER,
        media_types=("text/csv",),
    ),
    _public(
        "/open-data/metadata.json",
        "openDataMetadata",
        "The datasets' metadata (DCAT terms, JSON-LD): licence, fields and their meanings",
        metadata,
    ),
    Endpoint(
        "GET",
        "/analytics/requests.csv",
        "analystExport",
        "Every request with its reference, exact point and department, as CSV; no personal data "
        "(audited)",
        analyst_export,
        permission=Permission.VIEW_ANALYTICS,
        scope="ward",
        tag="analytics",
        query=(*_REQUEST_QUERY, _DEPARTMENT),
        answer=_CSV_ANSWER,
        media_types=("text/csv",),
    ),
    Endpoint(
        "GET",
        "/equity-alerts",
        "listEquityAlerts",
        "Services and wards where informal settlements wait much longer, two periods running "
        "(audited)",
        list_equity_alerts,
        permission=Permission.VIEW_ANALYTICS,
        scope="ward",
        tag="analytics",
        answer=schemas.obj(
            threshold=schemas.NUMBER, period=_S, items={"type": "array", "items": _ALERT}
        ),
    ),
)
