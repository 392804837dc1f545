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

from collections.abc import Sequence

from forms_runtime.effects import Ask, Cancelled, Effect, Notice, Reject, Review, Submit
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
    if isinstance(effect, Reject | Notice | Cancelled):
        return effect.message
    raise TypeError(f"not an effect: {effect!r}")


def render_plain(effects: Sequence[Effect], locale: str, *, numbered_options: bool = True) -> str:
    """All effects of one turn as one text, paragraphs apart."""
    parts = [effect_text(e, locale, numbered_options=numbered_options) for e in effects]
    return "\n\n".join(p for p in parts if p)


def split_sentences(text: str) -> list[str]:
    """Cut ``text`` after sentence ends and at line breaks, keeping every character.

    Joining the pieces gives ``text`` back, so a splitter can pack them into messages.
    """
    pieces: list[str] = []
    start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        end: int | None = None
        if ch == "\n":
            end = i + 1
        elif ch in ".!?" and i + 1 < n and text[i + 1] == " ":
            end = i + 2
        if end is not None:
            pieces.append(text[start:end])
            start = i = end
            continue
        i += 1
    if start < n:
        pieces.append(text[start:])
    return pieces
