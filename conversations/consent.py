"""POPIA: the privacy notice on first contact, and consent before any personal question.

A form that has personal steps (name, phone, email) is opened only after the resident answered
the consent question. Yes: the form runs whole. No: the form runs without its personal steps, so
the city cannot contact them about the report, and that is said plainly. The answer is kept on
the resident (``consent_at`` / ``consent_declined_at``) and audited.

Example::

    if needs_consent(form, turn.profile):
        ask_consent(turn, form)            # the purpose, then "Do you agree...?"
"""

from __future__ import annotations

from conversations.residents import ResidentProfile
from conversations.turn_context import Turn
from forms_runtime.effects import Ask, InputKind, Notice, OptionView
from forms_runtime.i18n import N_, tr
from forms_runtime.model import Form

__all__ = [
    "CONSENT",
    "PRIVACY_NOTICE",
    "ask_consent",
    "consent_question",
    "needs_consent",
    "record_consent",
    "skips_personal_steps",
    "yes_no_question",
]

# The step id of the consent question (the bot's own question, kept under "pending").
CONSENT = "consent"

PRIVACY_NOTICE = N_(
    "Hello, this is the City's service line. We use what you send to handle your reports. "
    "Send DELETE MY DATA at any time to erase your details, or STOP to stop messages."
)
_PURPOSE = N_(
    "This report can include your name or phone number so the city can contact you. "
    "We keep them only as long as the report needs, and only staff handling it see them."
)
_QUESTION = N_("Do you agree to share your contact details for this report?")
_DECLINED = N_(
    "That is fine. I will not ask for your name, phone number or email, so the city cannot contact you about this report."
)


def yes_no_question(locale: str, step_id: str, prompt: str) -> Ask:
    return Ask(
        step_id=step_id,
        prompt=tr(locale, prompt),
        kind=InputKind.YES_NO,
        options=(OptionView("yes", tr(locale, N_("Yes"))), OptionView("no", tr(locale, N_("No")))),
    )


def consent_question(locale: str) -> Ask:
    return yes_no_question(locale, CONSENT, _QUESTION)


def needs_consent(form: Form, profile: ResidentProfile) -> bool:
    """The form asks for personal data and the resident has not answered yet."""
    return (
        form.collects_personal_data
        and profile.consent_at is None
        and profile.consent_declined_at is None
    )


def skips_personal_steps(profile: ResidentProfile) -> bool:
    return profile.consent_at is None and profile.consent_declined_at is not None


def ask_consent(turn: Turn, form: Form) -> None:
    turn.envelope["pending"] = {"kind": CONSENT, "form_id": form.id}
    turn.say(Notice(tr(turn.locale, _PURPOSE)), consent_question(turn.locale))


async def record_consent(turn: Turn, agreed: bool) -> None:
    """Keep the answer on the resident (written back with the turn) and audit it."""
    if agreed:
        turn.profile.consent_at = turn.now
        turn.profile.consent_declined_at = None
    else:
        turn.profile.consent_declined_at = turn.now
        turn.say(Notice(tr(turn.locale, _DECLINED)))
    await turn.audit("consent_given" if agreed else "consent_declined")
