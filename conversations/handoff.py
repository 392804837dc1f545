"""AGENT: a resident asks for a person.

The request is queued for support staff (``HandoffRequest``), and the resident is told when staff
answer. While an agent holds a conversation the bot stays silent; the takeover console that sets
this comes with the support issue, so for now no agent holds any conversation.

Example::

    await request_agent(turn, office_hours="Monday to Friday, 08:00 to 16:30")
"""

from __future__ import annotations

from conversations.keys import ConversationKey
from conversations.turn_context import Turn
from forms_runtime.effects import Notice
from forms_runtime.i18n import N_, tr
from storage.models import HandoffRequest

__all__ = ["agent_holds", "request_agent"]


def agent_holds(key: ConversationKey) -> bool:
    """Whether a support agent holds this conversation (the bot then only logs it)."""
    return False


async def request_agent(turn: Turn, office_hours: str) -> None:
    session = await turn.sql()
    session.add(
        HandoffRequest(
            resident_id=turn.resident_id, channel=turn.message.channel, created_at=turn.now
        )
    )
    text = N_(
        "I have asked our staff to contact you. They reply during office hours ({hours}), so it may take a while. Send MENU to report a problem meanwhile."
    )
    turn.say(Notice(tr(turn.locale, text, hours=office_hours)))
