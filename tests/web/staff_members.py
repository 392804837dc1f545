"""City staff for the admin API tests: real accounts, each with its own cookie jar, talking to
the app over real HTTP on loopback.

``StaffHouse`` builds the app on a database (SQLite file or a fresh PostgreSQL), with a cheap
Argon2 and a settable clock for sign-in (TOTP steps) and for session ages; ``house.member(...)``
creates an account and a client that signs in with its password and TOTP code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pyotp
from argon2 import PasswordHasher
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services import Services
from bot.web.staff_sessions import CSRF_HEADER
from staff import accounts
from staff.accounts import NewAccount
from staff.authentication import StaffAuthentication
from storage.models import (
    IncidentSuggestion,
    Open311Request,
    Resident,
    ResidentAddress,
    StaffAccount,
    Submission,
    SupportTicket,
    incident_suggestion_reports,
)
from storage.types import utc_now

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def seconds(self) -> float:
        return self.now.timestamp()

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Answer:
    status: int
    body: Any
    headers: Any = None

    @property
    def code(self) -> str | None:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return error.get("code") if isinstance(error, dict) else None


@dataclass
class Member:
    """One person (or one API token) calling the API with their own cookies."""

    base_url: str
    clock: Clock
    email: str | None = None
    password: str | None = None
    totp_secret: str | None = None
    token: str | None = None
    account_id: int | None = None
    csrf: str | None = None
    http: aiohttp.ClientSession = field(init=False)

    def __post_init__(self) -> None:
        self.http = aiohttp.ClientSession(
            base_url=self.base_url, cookie_jar=aiohttp.CookieJar(unsafe=True)
        )

    async def sign_in(self, **overrides: Any) -> Answer:
        # A TOTP code is good once per 30-second step: every sign-in gets a step of its own.
        self.clock.advance(timedelta(seconds=31))
        body: dict[str, Any] = {"email": self.email, "password": self.password}
        if self.totp_secret:
            body["totp"] = pyotp.TOTP(self.totp_secret).at(self.clock.now)
        body.update(overrides)
        answer = await self.call("POST", "/api/v1/session", body, auth=False)
        if answer.status == 200:
            self.csrf = answer.body["csrf_token"]
        return answer

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        auth: bool = True,
        csrf: bool = True,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> Answer:
        sent = dict(headers or {})
        if auth and self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        if csrf and self.csrf and method != "GET":
            sent.setdefault(CSRF_HEADER, self.csrf)
        kwargs: dict[str, Any] = {"headers": sent}
        if data is not None:
            kwargs["data"] = data
        elif body is not None:
            kwargs["json"] = body
        async with self.http.request(method, path, **kwargs) as response:
            try:
                parsed = await response.json(content_type=None)
            except ValueError:
                parsed = await response.text()
            return Answer(response.status, parsed, response.headers)

    async def close(self) -> None:
        await self.http.close()


@dataclass
class StaffHouse:
    services: Services
    base_url: str
    clock: Clock
    members: list[Member] = field(default_factory=list)

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.services.session_factory

    def anonymous(self) -> Member:
        self.members.append(Member(self.base_url, self.clock))
        return self.members[-1]

    async def member(
        self,
        email: str,
        roles: list[str],
        *,
        wards: list[str] | None = None,
        sign_in: bool = True,
        password_set: bool = True,
    ) -> Member:
        async with self.sessions() as session, session.begin():
            created = await accounts.create_account(
                session,
                NewAccount.checked(email, roles=roles, wards=wards),
                actor="test",
                hasher=FAST_HASHER,
            )
            if password_set:
                await session.execute(
                    update(StaffAccount)
                    .where(StaffAccount.id == created.account.id)
                    .values(must_change_password=False)
                )
        secret = None
        if created.totp_uri:
            secret = pyotp.parse_uri(created.totp_uri).secret
        person = Member(
            self.base_url,
            self.clock,
            email=email,
            password=created.password,
            totp_secret=secret,
            account_id=created.account.id,
        )
        self.members.append(person)
        if sign_in:
            answer = await person.sign_in()
            assert answer.status == 200, answer
        return person

    async def token_for(self, email: str, roles: list[str]) -> Member:
        async with self.sessions() as session, session.begin():
            issued = await accounts.issue_token(session, email, roles=roles, days=30, actor="test")
        self.members.append(Member(self.base_url, self.clock, token=issued.token))
        return self.members[-1]

    async def close(self) -> None:
        for member in self.members:
            await member.close()


def fast_authentication(services: Services, clock: Clock) -> StaffAuthentication:
    return StaffAuthentication(services.session_factory, hasher=FAST_HASHER, clock=clock)


async def seed_request(
    sessions: async_sessionmaker[AsyncSession],
    reference: str,
    *,
    ward: str,
    area_type: str = "formal",
    phone: str | None = None,
    channel: str = "sms",
    filed: bool = True,
) -> None:
    """A resident's report in ``ward``, filed with the built-in Open311 server (or not yet)."""
    async with sessions() as session, session.begin():
        resident = Resident(locale="en")
        session.add(resident)
        await session.flush()
        if phone:
            session.add(ResidentAddress(resident_id=resident.id, channel=channel, address=phone))
        row = None
        if filed:
            row = Open311Request(
                token=reference.lower(),
                service_code="pothole",
                service_name="Pothole",
                description="A pothole",
                status="open",
            )
            session.add(row)
            await session.flush()
        session.add(
            Submission(
                reference=reference,
                resident_id=resident.id,
                channel=channel,
                form_id="pothole",
                form_version=1,
                service_code="pothole",
                locale="en",
                answers={},
                ward=ward,
                wards=[ward],
                area_type=area_type,
                status="filed" if filed else "pending",
                service_request_id=None if row is None else str(row.id),
            )
        )


async def seed_ticket(
    sessions: async_sessionmaker[AsyncSession],
    *,
    ward: str | None = "1",
    locale: str = "en",
    state: str = "waiting",
) -> int:
    """A resident of ``ward`` on SMS whose conversation waits for a person (or is in ``state``)."""
    async with sessions() as session, session.begin():
        resident = Resident(locale=locale)
        session.add(resident)
        await session.flush()
        ticket = SupportTicket(
            resident_id=resident.id,
            channel="sms",
            address=f"+2783000{resident.id:04d}",
            ward=ward,
            locale=locale,
            state=state,
        )
        session.add(ticket)
        await session.flush()
        return ticket.id


async def seed_suggestion(sessions: async_sessionmaker[AsyncSession], *, ward: str = "1") -> int:
    """A burst of "no water" in ``ward`` with one report behind it, waiting for a decision."""
    now = utc_now()
    async with sessions() as session, session.begin():
        serial = 1 + int(
            await session.scalar(select(func.count()).select_from(IncidentSuggestion)) or 0
        )
        report = Submission(
            reference=f"CT-SG{serial:04d}",
            form_id="no_water",
            form_version=1,
            service_code="WATER",
            locale="en",
            answers={},
            ward=ward,
        )
        row = IncidentSuggestion(
            serial=serial,
            service="no_water",
            area=f"ward:{ward}",
            wards=[ward],
            window_count=6,
            expected=0.2,
            p_value=1e-7,
            report_count=1,
            first_report_at=now,
            latest_report_at=now,
        )
        session.add_all([report, row])
        await session.flush()
        await session.execute(
            incident_suggestion_reports.insert().values(
                suggestion_id=row.id, submission_id=report.id
            )
        )
        return row.id
