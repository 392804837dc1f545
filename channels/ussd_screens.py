"""USSD screens: at most 182 GSM-7 characters, numbered choices, "00 More" and "0 Back".

A screen is some text and a list of choices. When they do not fit one screen they are paged:
the text first (cut after sentence ends), then the choices, each page ending with "00 More"
(and "0 Back" after the first). A choice keeps its number on every page, so "7" means the same
thing whichever page the resident typed it on. Pure: the dialogue (``bot.ussd``) keeps the page.

The screen's limits (``MAX_SCREEN``, the footer) live in ``forms_runtime.ussd_screen``, where
the form linter checks every step against them too.

Also here, because USSD has no location pins: finding places of the gazetteer by the first
letters a resident types, or by their ward number.

Example::

    page = paginate("Which service?", [("pothole", "Pothole"), ...], page=0, locale="en")
    page.text      # 'Which service?\\n1 Pothole\\n2 Streetlight\\n...\\n00 More'
    page.more      # True: "00" shows page 1
    places_starting(default_gazetteer(), "khay")   # ['Khayelitsha', 'Khayelitsha Site B', ...]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from channels.render_text import split_sentences
from forms_runtime.gazetteer import Gazetteer
from forms_runtime.gazetteer.folding import fold
from forms_runtime.ussd_screen import BACK, MAX_SCREEN, MORE, footer_lines, screen_text

__all__ = [
    "BACK",
    "MAX_SCREEN",
    "MORE",
    "Page",
    "paginate",
    "places_in_ward",
    "places_starting",
]

# Places a search offers at most (paged); more means the resident should type more letters.
MAX_PLACES = 30

Choice = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Page:
    text: str
    more: bool
    pages: int


def paginate(
    text: str,
    choices: Sequence[Choice],
    page: int,
    locale: str,
    *,
    back: bool = True,
    more: bool = True,
) -> Page:
    """Page ``page`` (from 0) of ``text`` and its numbered ``choices``, each page a screen.
    ``more=False`` for a last screen ("END"), where nobody can type "00": no "00 More" line,
    and ``Page.more`` says that something did not fit."""
    pages = _pages(screen_text(text).strip(), choices, locale, back=back, more=more)
    index = max(0, min(page, len(pages) - 1))
    return Page(text=pages[index], more=index < len(pages) - 1, pages=len(pages))


def _pages(
    text: str, choices: Sequence[Choice], locale: str, *, back: bool, more: bool
) -> list[str]:
    more_line, back_line = footer_lines(locale, more=True)
    lines = _text_lines(text) + [
        screen_text(f"{n} {label}") for n, (_, label) in enumerate(choices, 1)
    ]
    pages: list[str] = []
    current: list[str] = []
    for line in lines:
        # Room kept for the footer of a page that is not the last one: "00 More" and "0 Back".
        footer = ([more_line] if more else []) + ([back_line] if back or pages else [])
        candidate = [*current, line]
        if current and len("\n".join(candidate + footer)) > MAX_SCREEN:
            pages.append("\n".join([*current, *footer]))
            current = [line]
        else:
            current = candidate
    last_footer = [back_line] if (back or pages) else []
    if len("\n".join([*current, *last_footer])) > MAX_SCREEN:
        last_footer = []
    pages.append("\n".join([*current, *last_footer]))
    return pages


def _text_lines(text: str) -> list[str]:
    """The text as lines no longer than a screen less its footer, cut after sentence ends."""
    room = MAX_SCREEN - 20
    lines: list[str] = []
    for paragraph in text.split("\n"):
        if not paragraph.strip():
            continue
        current = ""
        for piece in split_sentences(paragraph):
            while len(piece) > room:
                cut = piece.rfind(" ", 0, room)
                cut = cut if cut > 0 else room
                if current.strip():
                    lines.append(current.strip())
                    current = ""
                lines.append(piece[:cut].strip())
                piece = piece[cut:]
            if len(current + piece) > room and current.strip():
                lines.append(current.strip())
                current = ""
            current += piece
        if current.strip():
            lines.append(current.strip())
    return lines


def places_starting(gazetteer: Gazetteer, letters: str) -> list[str]:
    """Display names of places a word of which starts with ``letters`` (folded), names that
    start with them first; at most ``MAX_PLACES``."""
    wanted = fold(letters).strip()
    if len(wanted) < 2:
        return []
    first: list[str] = []
    inner: list[str] = []
    for place in gazetteer.places:
        name = fold(place.name)
        if name.startswith(wanted):
            first.append(place.name)
        elif any(word.startswith(wanted) for word in name.split()):
            inner.append(place.name)
    return (sorted(first) + sorted(inner))[:MAX_PLACES]


def places_in_ward(gazetteer: Gazetteer, ward: str) -> list[str]:
    """Display names of the places whose main ward is ``ward``, settlements last."""
    found = [p for p in gazetteer.places if p.ward == ward.lstrip("0")]
    found.sort(key=lambda p: (p.kind == "informal_settlement", p.name))
    return [p.name for p in found][:MAX_PLACES]
