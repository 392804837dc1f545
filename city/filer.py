"""The filer: sends every stored submission to the city, once, however the back end behaves.

A submission and its ``submission_outbox`` row are written in one transaction by the
conversation core; the filer takes due rows in order and files them through ``CityBackend``.

- **Never lost.** A failure leaves the row pending with its next try after 1, 5 and 30 minutes,
  then every 30 minutes (configurable, with jitter), for as long as it takes. Each try is logged in
  ``filing_attempts`` with its reason; after ``alert_after`` failures an alert is logged and
  counted in ``citybot_filing_alerts``. A report the city refuses outright (HTTP 400) is parked
  as ``rejected`` with the city's reason for a person to see, not retried forever.
- **Never doubled.** Each report carries its reference (``[ref CT-XXXXXX]``) in the description.
  Claiming a row writes an ``in_flight`` attempt first; any later try of the same report first
  asks the back end whether a request with that reference already exists (the earlier POST may
  have landed even though its answer was lost: a timeout, a 500 after the insert, a kill -9),
  and a token from a batch service is exchanged, never re-posted.
- **In order after an outage.** When two reports in a row cannot reach a back end (timeout,
  refused connection, HTTP 5xx), or the only one there was, the back end is away: its whole
  queue backs off as one (every pending report of it gets the same next try, from the schedule
  of its most-tried report, and reports taken meanwhile wait for it too), so when it returns its
  reports are filed oldest first. A report that fails while the next one goes through has a
  problem of its own: it keeps its own schedule and holds no one up.
- **Shared safely.** A claim moves ``next_attempt_at`` forward by a lease in one short
  transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises writers), so several
  workers never take the same row; the lease outlasts the HTTP timeout, and the attempt number
  fences off a worker whose lease ran out.

On success the submission gets the city's ``service_request_id`` and status ``filed`` and, in
the same transaction, the ``on_filed`` port runs: the app wires it to
``notifier.status_notices.queue_filed``, which puts the resident's "your report is with the
city, its number is ..." notice into the notification outbox in their language (unless they
opted out), so a crash right after filing cannot lose it.

Example::

    filer = Filer(sessionmaker, backend, standard_forms(), on_filed=queue_filed)
    await filer.run_once()          # files what is due now; returns how many rows it handled
"""

from __future__ import annotations

import logging
import os
import random
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from city.media_links import MediaLinks
from city.open311.client import CityBackend
from city.open311.errors import (
    ApiKeyRefused,
    BackendRejected,
    BackendUnavailable,
    Open311Error,
    RequestNotFound,
)
from city.open311.mapping import draft_from_answers
from city.open311.types import ServiceDefinition, ServiceRequestDraft
from forms_runtime.model import Form
from storage.models import FilingAttempt, Submission, SubmissionOutbox

__all__ = ["Filer", "FilerSettings", "OnFiled"]

log = logging.getLogger("citybot.filer")

# ``await on_filed(session, submission, now)`` inside the transaction that records the filing:
# what must happen exactly when a report becomes filed (the app queues the resident's notice).
OnFiled = Callable[[AsyncSession, Submission, datetime], Awaitable[object]]


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class FilerSettings:
    # Seconds before the 1st, 2nd, 3rd... retry; the last one repeats forever.
    retry_delays: tuple[float, ...] = (60.0, 300.0, 1800.0)
    # Each delay is spread by up to this fraction, so a recovered back end is not stampeded.
    jitter: float = 0.2
    alert_after: int = 5
    # How long a claimed row is ours; must outlast the client's HTTP timeout.
    lease_seconds: float = 120.0
    batch_size: int = 20
    # How long run_forever sleeps when nothing is due.
    idle_seconds: float = 1.0
    worker: str = field(default_factory=_worker_name)


@dataclass(frozen=True, slots=True)
class _Claim:
    outbox_id: int
    attempt_id: int
    number: int
    submission_id: int
    reference: str
    form_id: str
    service_code: str
    answers: dict[str, object]
    created_at: datetime
    # A token from an earlier attempt: the request exists, its id is still to come.
    token: str | None
    address_string: str | None
    lat: float | None
    lon: float | None


@dataclass(frozen=True, slots=True)
class _Outcome:
    # filed, found, token, retry, rejected; ``away`` is a retry because the back end could not
    # be reached; ``held`` a report not tried because its back end was just found away.
    kind: str
    reason: str | None = None
    service_request_id: str | None = None
    token: str | None = None


class Filer:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        backend: CityBackend,
        forms: Mapping[str, Form],
        *,
        settings: FilerSettings | None = None,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
        media_links: MediaLinks | None = None,
        on_filed: OnFiled | None = None,
        service_backends: Mapping[str, CityBackend] | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        # Runs in the transaction that marks a report filed (the resident's notice goes there).
        self.on_filed = on_filed
        # Photos go to the city as signed links to our media proxy (``/media/<token>``).
        self.media_links = media_links
        self.backend = backend
        # A second back end per service code (a transport operator's own Open311 endpoint);
        # every other service is filed with ``backend``, the city's.
        self.service_backends = dict(service_backends or {})
        self.forms = dict(forms)
        self.settings = settings or FilerSettings()
        self.clock = clock
        self.rng = rng or random.Random()
        self._definitions: dict[str, ServiceDefinition | None] = {}
        # Back ends found away, and until when their queue waits (see "In order" above).
        self._away_until: dict[int, datetime] = {}
        registry = registry or CollectorRegistry()
        self.filed = Counter("citybot_filed", "Reports filed with the city", registry=registry)
        self.failures = Counter(
            "citybot_filing_failures",
            "Filing attempts that failed, by kind",
            ["kind"],
            registry=registry,
        )
        self.alerts = Counter(
            "citybot_filing_alerts",
            "Reports that failed to file alert_after times or more (or were refused)",
            registry=registry,
        )

    # -- the loop ------------------------------------------------------------------------------

    async def run_once(self) -> int:
        """File every row due now, in order; returns how many rows this worker handled."""
        claims = await self._claim()
        # Per back end: a first report that could not reach it (away, unless another goes
        # through), and the back ends found away in this cycle.
        suspect: dict[int, tuple[_Claim, _Outcome]] = {}
        away: dict[int, str] = {}
        for claim in claims:
            key = id(self.backend_for(claim.service_code))
            if key in away:
                await self._finish(claim, _Outcome("held", away[key]))
                continue
            outcome = await self._attempt(claim)
            first = suspect.pop(key, None)
            if outcome.kind == "away" and first is None:
                suspect[key] = (claim, outcome)
                continue
            if first is not None:
                await self._finish(*first)
            await self._finish(claim, outcome)
            if outcome.kind == "away":
                away[key] = f"not tried: the back end is away ({outcome.reason})"
        for key, first in suspect.items():
            await self._finish(*first)
            away[key] = "away"
        for key in away:
            await self._hold_queue(key)
        return len(claims)

    def _codes_of(self, key: int) -> ColumnElement[bool]:
        """The reports filed with back end ``key``, as a condition on ``Submission``."""
        if key == id(self.backend):
            elsewhere = [c for c, b in self.service_backends.items() if b is not self.backend]
            return Submission.service_code.not_in(elsewhere)
        return Submission.service_code.in_(
            [c for c, b in self.service_backends.items() if id(b) == key]
        )

    async def _hold_queue(self, key: int) -> None:
        """Back end ``key`` is away: every pending report of it gets one next try, from the
        schedule of the most-tried, so that they are tried (and filed) together, oldest first."""
        of_backend = select(Submission.id).where(self._codes_of(key))
        async with self.sessionmaker() as session, session.begin():
            pending = SubmissionOutbox.done_at.is_(None) & SubmissionOutbox.submission_id.in_(
                of_backend
            )
            tries = await session.scalar(select(func.max(SubmissionOutbox.attempts)).where(pending))
            until = self.clock() + self._delay(int(tries or 1))
            await session.execute(
                update(SubmissionOutbox).where(pending).values(next_attempt_at=until)
            )
        self._away_until[key] = until
        log.warning(
            "the city's back end cannot be reached; its reports wait until %s, then go in order",
            until.isoformat(timespec="seconds"),
        )

    def _waiting(self, now: datetime) -> ColumnElement[bool] | None:
        """Reports of back ends found away, not to be taken before their queue's next try
        (taken meanwhile, they would be filed ahead of older reports)."""
        waiting = [self._codes_of(k) for k, until in self._away_until.items() if until > now]
        if not waiting:
            return None
        condition = waiting[0]
        for other in waiting[1:]:
            condition = condition | other
        return condition

    # -- claiming ------------------------------------------------------------------------------

    async def _claim(self) -> list[_Claim]:
        now = self.clock()
        lease = now + timedelta(seconds=self.settings.lease_seconds)
        claims: list[_Claim] = []
        async with self.sessionmaker() as session, session.begin():
            query = (
                select(SubmissionOutbox, Submission)
                .join(Submission, Submission.id == SubmissionOutbox.submission_id)
                .where(SubmissionOutbox.done_at.is_(None), SubmissionOutbox.next_attempt_at <= now)
                .order_by(SubmissionOutbox.id)
                .limit(self.settings.batch_size)
            )
            waiting = self._waiting(now)
            if waiting is not None:
                query = query.where(~waiting)
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(of=SubmissionOutbox, skip_locked=True)
            rows = (await session.execute(query)).all()
            for outbox, submission in rows:
                token = await session.scalar(
                    select(FilingAttempt.token)
                    .where(
                        FilingAttempt.submission_id == submission.id,
                        FilingAttempt.token.is_not(None),
                    )
                    .order_by(FilingAttempt.id.desc())
                    .limit(1)
                )
                outbox.attempts += 1
                outbox.next_attempt_at = lease
                attempt = FilingAttempt(
                    submission_id=submission.id,
                    number=outbox.attempts,
                    worker=self.settings.worker,
                    started_at=now,
                    outcome="in_flight",
                )
                session.add(attempt)
                await session.flush()
                claims.append(
                    _Claim(
                        outbox_id=outbox.id,
                        attempt_id=attempt.id,
                        number=outbox.attempts,
                        submission_id=submission.id,
                        reference=submission.reference,
                        form_id=submission.form_id,
                        service_code=submission.service_code,
                        answers=dict(submission.answers or {}),
                        created_at=submission.created_at,
                        token=token,
                        address_string=submission.address_string,
                        lat=submission.lat,
                        lon=submission.lon,
                    )
                )
        return claims

    # -- one attempt ---------------------------------------------------------------------------

    async def _definition(self, service_code: str) -> ServiceDefinition | None:
        if service_code not in self._definitions:
            try:
                backend = self.backend_for(service_code)
                self._definitions[service_code] = await backend.service_definition(service_code)
            except RequestNotFound:
                self._definitions[service_code] = None
        return self._definitions[service_code]

    async def _draft(self, claim: _Claim) -> ServiceRequestDraft:
        form = self.forms.get(claim.form_id)
        if form is None:
            raise LookupError(f"form {claim.form_id} is not loaded")
        draft = draft_from_answers(
            form,
            claim.answers,
            reference=claim.reference,
            definition=await self._definition(claim.service_code),
            photo_url=self._photo_url(claim),
        )
        if draft.lat is None and claim.lat is not None and claim.lon is not None:
            draft = _with_place(draft, claim)
        return draft

    def _photo_url(self, claim: _Claim) -> Callable[[str], str] | None:
        links = self.media_links
        if links is None:
            return None
        return lambda step_id: links.url_for(claim.submission_id, step_id)

    def backend_for(self, service_code: str) -> CityBackend:
        """Where reports of ``service_code`` are filed: its own back end, else the city's."""
        return self.service_backends.get(service_code, self.backend)

    async def _attempt(self, claim: _Claim) -> _Outcome:
        backend = self.backend_for(claim.service_code)
        try:
            if claim.token:
                found_id = await backend.request_id_from_token(claim.token)
                if found_id:
                    return _Outcome("found", "id given for the token", found_id)
                return _Outcome(
                    "retry", "the city has not given an id for the token yet", token=claim.token
                )
            if claim.number > 1:
                # An earlier try may have landed although its answer was lost: look first.
                since = claim.created_at - timedelta(hours=1)
                found = await backend.find_by_reference(claim.reference, claim.service_code, since)
                if found is not None:
                    return _Outcome("found", "already on the back end", found.service_request_id)
            result = await backend.submit(await self._draft(claim))
        except ApiKeyRefused as exc:
            return _Outcome("away", str(exc))
        except BackendRejected as exc:
            return _Outcome("rejected", str(exc))
        except BackendUnavailable as exc:
            return _Outcome("away", str(exc))
        except (Open311Error, LookupError) as exc:
            return _Outcome("retry", str(exc))
        if result.service_request_id:
            return _Outcome("filed", None, result.service_request_id)
        if result.token:
            return _Outcome(
                "token", "the city gave a token; its id comes later", token=result.token
            )
        return _Outcome("retry", "the city answered with neither an id nor a token")

    # -- recording -----------------------------------------------------------------------------

    def _delay(self, number: int) -> timedelta:
        delays = self.settings.retry_delays or (1800.0,)
        base = delays[min(number - 1, len(delays) - 1)]
        spread = 1 + self.rng.uniform(-self.settings.jitter, self.settings.jitter)
        return timedelta(seconds=max(0.0, base * spread))

    async def _finish(self, claim: _Claim, outcome: _Outcome) -> None:
        now = self.clock()
        async with self.sessionmaker() as session, session.begin():
            attempt = await session.get(FilingAttempt, claim.attempt_id)
            outbox = await session.get(SubmissionOutbox, claim.outbox_id)
            submission = await session.get(Submission, claim.submission_id)
            if attempt is None or outbox is None or submission is None:
                return  # the submission was erased meanwhile
            attempt.finished_at = now
            attempt.outcome = outcome.kind
            attempt.reason = outcome.reason
            attempt.service_request_id = outcome.service_request_id
            attempt.token = outcome.token
            # Another worker took the row after our lease ran out: it owns the outbox now.
            ours = outbox.attempts == claim.number and outbox.done_at is None
            if outcome.kind in ("filed", "found") and outcome.service_request_id:
                first_time = submission.service_request_id is None
                if first_time:
                    submission.service_request_id = outcome.service_request_id
                    submission.status = "filed"
                outbox.done_at = outbox.done_at or now
                outbox.last_error = None
                if first_time:
                    self.filed.inc()
                    if self.on_filed is not None:
                        await self.on_filed(session, submission, now)
            elif ours and outcome.kind == "rejected":
                submission.status = "rejected"
                outbox.done_at = now
                outbox.last_error = outcome.reason
                self.alerts.inc()
                log.error("the city refused report %s: %s", claim.reference, outcome.reason)
            elif ours:
                # token: exchange soon; retry, away, held: back off (the whole queue, when the
                # back end is away: run_once's _hold_queue follows).
                delay = self._delay(1 if outcome.kind == "token" else claim.number)
                outbox.next_attempt_at = now + delay
                outbox.last_error = outcome.reason
                if outcome.kind in ("retry", "away"):
                    self.failures.labels(kind=_kind(outcome.reason)).inc()
                    if claim.number >= self.settings.alert_after:
                        self.alerts.inc()
                        log.error(
                            "report %s has failed to file %d times; next try at %s: %s",
                            claim.reference,
                            claim.number,
                            outbox.next_attempt_at.isoformat(timespec="seconds"),
                            outcome.reason,
                        )
                    else:
                        log.warning("report %s not filed yet (%s)", claim.reference, outcome.reason)


def _kind(reason: str | None) -> str:
    text = (reason or "").lower()
    for word in ("time", "reached", "json", "xml", "http 5", "api key", "token", "neither"):
        if word in text:
            return word.replace(" ", "_")
    return "other"


def _with_place(draft: ServiceRequestDraft, claim: _Claim) -> ServiceRequestDraft:
    return replace(
        draft,
        lat=claim.lat,
        long=claim.lon,
        address_string=draft.address_string or claim.address_string,
    )
