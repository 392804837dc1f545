"""What a channel's messages need before the turn loop sees them, and the polite answers.

Some messages cannot be answers: a sticker, a voice note, a poll, a GIF where a photo was asked
for. Some are answers but absurd: a 20,000-character message. ``screen`` turns each into what the
turn loop should see (still deduplicated, still subject to STOP) plus the English msgid of a
polite notice that goes before the turn's own reply, in the resident's language.

Example::

    screened = screen(InboundMessage(channel="sms", address="+2783...", message_id="SM1",
                                     text="x" * 20_000))
    len(screened.message.text)   # 4000
    screened.notice              # 'Your message was long, so I kept the first {limit} characters.'
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from channels.media import media_problem
from channels.types import InboundKind, InboundMessage
from forms_runtime.i18n import N_, tr

__all__ = ["MAX_TEXT_CHARS", "TOO_LONG", "UNSUPPORTED", "Screened", "notice_text", "screen"]

# Open311 takes descriptions up to 4,000 characters; nothing a form asks needs more.
MAX_TEXT_CHARS = 4000

UNSUPPORTED = N_(
    "I can read text, locations and photos. Type your answer, or send a photo or a location."
)
TOO_LONG = N_("Your message was long, so I kept the first {limit} characters.")


@dataclass(frozen=True, slots=True)
class Screened:
    # What to hand to the turn loop (an unreadable message still goes, as UNSUPPORTED, so it is
    # deduplicated, logged and silent for an opted-out resident).
    message: InboundMessage
    # The English msgid of a notice to say first, or None.
    notice: str | None = None


def screen(message: InboundMessage) -> Screened:
    if message.kind is InboundKind.UNSUPPORTED:
        return Screened(message, UNSUPPORTED)
    if message.kind is InboundKind.MEDIA:
        for ref in message.media:
            problem = media_problem(ref)
            if problem is not None:
                unreadable = replace(message, kind=InboundKind.UNSUPPORTED, media=(), text=None)
                return Screened(unreadable, problem)
    if message.text is not None and len(message.text) > MAX_TEXT_CHARS:
        return Screened(replace(message, text=message.text[:MAX_TEXT_CHARS]), TOO_LONG)
    return Screened(message)


def notice_text(msgid: str, locale: str) -> str:
    """A screening notice in the resident's language."""
    return tr(locale, msgid, limit=f"{MAX_TEXT_CHARS:,}")
