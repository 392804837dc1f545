"""What the keywords do: opt-out, opt-in and help, checked before anything else in every state
(``conversations.commands.parse_keyword`` reads them).

Opting out and back in are audited. On SMS, Twilio confirms an opt-out itself and blocks our
messages from then on, so the bot says nothing there.

Example::

    await opt_out(turn)          # turn.effects == [Notice("You will not get any more ...")]
"""

from __future__ import annotations

from conversations.form_flow import FormFlow
from conversations.turn_context import Turn
from forms_runtime.effects import Notice
from forms_runtime.i18n import N_, tr

__all__ = ["HELP_TEXT", "help_", "opt_in", "opt_out"]

HELP_TEXT = N_(
    "Describe the problem in a few words, or send MENU to see all services. "
    "Other words: STATUS and your reference, LANGUAGE, AGENT for a person, "
    "EXPORT MY DATA to see what we hold about you, DELETE MY DATA, STOP to stop messages."
)


async def opt_out(turn: Turn) -> None:
    turn.profile.opted_out_at = turn.now
    await turn.audit("opt_out")
    turn.envelope.pop("pending", None)
    if turn.message.channel != "sms":
        text = N_(
            "You will not get any more messages from us. Send START to use this service again."
        )
        turn.effects = [Notice(tr(turn.locale, text))]
    else:
        turn.effects = []


async def opt_in(turn: Turn, flow: FormFlow) -> None:
    turn.profile.opted_out_at = None
    await turn.audit("opt_in")
    turn.say(Notice(tr(turn.locale, N_("Welcome back. You will get messages from us again."))))
    if turn.envelope.get("form") is not None:
        flow.offer_resume(turn)
    else:
        flow.menu(turn)


def help_(turn: Turn, flow: FormFlow) -> None:
    turn.say(Notice(tr(turn.locale, HELP_TEXT)))
    flow.repeat_question(turn)
