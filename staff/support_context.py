"""What an agent sees around a conversation besides its transcript: the resident's messages on
every channel (the message log), the answers of the form they are in, and their load per agent
for supervisors.

``history`` and ``form_answers`` are personal data: the caller has checked the ticket is the
agent's to see (``staff.support.view``) and audits the look (``support.context``). Form answers
are shown as the resident's review screen shows them, in English for the agent.

Example::

    async with sessionmaker() as session:
        lines = await history(session, ticket)
    answers = form_answers(forms, envelope)         # envelope: the conversation's state
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from forms_runtime import answers as answer_kinds
from forms_runtime.engine import applicable_steps
from forms_runtime.i18n import tr
from forms_runtime.model import Form
from staff.errors import NotFound
from staff.identity import StaffIdentity
from staff.roles import Role
from storage.models import MessageLog, StaffAccount, SupportTicket

__all__ = [
    "AgentLoad",
    "FormAnswers",
    "agent_loads",
    "form_answers",
    "history",
    "visible_ticket",
]

# The most recent messages shown: enough to see what happened before the takeover.
HISTORY = 50
_AGENT_ROLES = {Role.AGENT.value, Role.SUPERVISOR.value}


async def visible_ticket(
    session: AsyncSession, identity: StaffIdentity, ticket_id: int
) -> SupportTicket:
    """Conversation ``ticket_id`` if ``identity``'s wards cover it, else ``NotFound``."""
    query = select(SupportTicket).where(SupportTicket.id == ticket_id)
    if identity.wards is not None:
        query = query.where(SupportTicket.ward.in_(sorted(identity.wards)))
    found = await session.scalar(query)
    if found is None:
        raise NotFound(f"there is no conversation {ticket_id}")
    return found


async def history(session: AsyncSession, ticket: SupportTicket) -> list[dict[str, Any]]:
    """The resident's latest messages on every channel, both ways, oldest first."""
    if ticket.resident_id is None:
        return []
    rows = (
        await session.scalars(
            select(MessageLog)
            .where(MessageLog.resident_id == ticket.resident_id)
            .order_by(MessageLog.id.desc())
            .limit(HISTORY)
        )
    ).all()
    return [
        {
            "channel": m.channel,
            "direction": m.direction,
            "kind": m.kind,
            "text": m.text,
            "status": m.status,
            "at": m.created_at,
        }
        for m in reversed(rows)
    ]


@dataclass(frozen=True, slots=True)
class FormAnswers:
    form: str
    title: str
    answers: list[dict[str, str]]


def form_answers(
    forms: Mapping[str, Form], envelope: Mapping[str, Any] | None
) -> FormAnswers | None:
    """The open form's answers so far (label and answer), or None when no form is open."""
    state = (envelope or {}).get("form")
    if not isinstance(state, dict) or not isinstance(state.get("answers"), dict):
        return None
    form = forms.get(str(state.get("form")))
    if form is None:
        return None
    answered = state["answers"]
    # The report's steps only, even while its optional questions are asked: those answers
    # (gender, disability) are only ever counted, never shown per resident.
    report = dict(state, after=False)
    shown = [
        {
            "step": s.id,
            "label": tr("en", s.label or s.prompt),
            "answer": answer_kinds.display(s, answered[s.id], "en"),
        }
        for s in applicable_steps(form, report)
        if s.id in answered and not s.aggregate_only
    ]
    return FormAnswers(form.id, tr("en", form.title), shown)


@dataclass(frozen=True, slots=True)
class AgentLoad:
    account_id: int
    name: str
    email: str
    roles: list[str]
    languages: list[str]
    held: int
    last_claim: datetime | None


async def agent_loads(session: AsyncSession, identity: StaffIdentity) -> list[AgentLoad]:
    """Every active agent and supervisor a supervisor can give work to, with the conversations
    each holds now: a ward-scoped supervisor sees the agents of their wards and the city-wide
    ones."""
    held = dict(
        (
            await session.execute(
                select(SupportTicket.agent_id, func.count())
                .where(SupportTicket.state == "held")
                .group_by(SupportTicket.agent_id)
            )
        ).all()
    )
    claimed = dict(
        (
            await session.execute(
                select(SupportTicket.agent_id, func.max(SupportTicket.claimed_at)).group_by(
                    SupportTicket.agent_id
                )
            )
        ).all()
    )
    accounts = (
        await session.scalars(
            select(StaffAccount).where(StaffAccount.active.is_(True)).order_by(StaffAccount.email)
        )
    ).all()
    loads = []
    for a in accounts:
        if not _AGENT_ROLES & set(a.roles):
            continue
        if identity.wards is not None and a.wards is not None and not identity.wards & set(a.wards):
            continue
        loads.append(
            AgentLoad(
                a.id,
                a.name,
                a.email,
                list(a.roles),
                list(a.languages),
                int(held.get(a.id, 0)),
                claimed.get(a.id),
            )
        )
    return loads
