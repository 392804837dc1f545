"""Effects as plain text: what SMS, WhatsApp and the terminal show.

Options become numbered lines ("Reply 1 for Pothole") because a resident on a basic phone can only
type; the engine understands the number. The review screen lists its answers by number and its
prompt already says how to send or change them, so its options are not numbered again (that would
make "1" mean two things).

Example::

    render_plain([Reject("Enter a number"), Ask(...)], "en")
    # 'Enter a number\\n\\nHow big is it?\\nReply 1 for Small\\nReply 2 for Large'
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from forms_runtime.effects import Ask, Cancelled, Effect, Handoff, Notice, Reject, Review, Submit
from forms_runtime.i18n import N_, tr

__all__ = ["effect_text", "render_plain", "split_sentences"]


def effect_text(effect: Effect, locale: str, *, numbered_options: bool = True) -> str:
    """One effect as text; options numbered for channels without buttons."""
    if isinstance(effect, Ask):
        lines = [effect.prompt]
        if effect.hint:
            lines.append(effect.hint)
        if numbered_options:
            lines.extend(
                tr(locale, N_("Reply {number} for {label}"), number=n, label=option.label)
                for n, option in enumerate(effect.options, 1)
            )
        return "\n".join(lines)
    if isinstance(effect, Review):
        lines = [effect.title]
        lines.extend(f"{item.number}. {item.label}: {item.value}" for item in effect.items)
        lines.append(effect.prompt)
        return "\n".join(lines)
    if isinstance(effect, Submit):
        return effect.confirmation
    if isinstance(effect, Reject | Notice | Cancelled | Handoff):
        return effect.message
    raise TypeError(f"not an effect: {effect!r}")


def render_plain(effects: Sequence[Effect], locale: str, *, numbered_options: bool = True) -> str:
    """All effects of one turn as one text, paragraphs apart."""
    parts = [effect_text(e, locale, numbered_options=numbered_options) for e in effects]
    return "\n\n".join(p for p in parts if p)


# A sentence ends at a line break or at ". ", "! " or "? " (the space stays with it); the last
# piece may have no end. Written as runs of ordinary characters so the scan stays linear: long
# replies and broadcasts are all cut here.
_SENTENCE = re.compile(
    r"""
    [^\n.!?]* (?: [.!?](?!\ ) [^\n.!?]* )*   # anything up to the first sentence end
    (?: \n | [.!?]\  )                       # the end: a line break, or . ! ? and a space
    | .+                                      # the rest, which has no end
    """,
    re.DOTALL | re.VERBOSE,
)


def split_sentences(text: str) -> list[str]:
    """Cut ``text`` after sentence ends and at line breaks, keeping every character.

    Joining the pieces gives ``text`` back, so a splitter can pack them into messages.
    """
    return _SENTENCE.findall(text)
