"""What fits one USSD screen: 182 GSM-7 characters, numbered choices, "00 More" and "0 Back".

Pure, and in the form standard's floor because two sides need the same answer: the form linter
(a step that cannot fit a screen in some language is an error, ``forms_runtime.linter``) and the
USSD channel that pages screens (``channels.ussd_screens``).

Example::

    fits_screen("Is anyone in danger?", ["Yes", "No"], locale="en")      # True
    fits_screen(long_prompt, ["First choice"], locale="zu", more=True)  # False: the question
                                                                         # cannot share a page
"""

from __future__ import annotations

from collections.abc import Sequence

from forms_runtime.i18n import N_, tr
from forms_runtime.sms import is_gsm7, to_gsm7

__all__ = ["BACK", "MAX_SCREEN", "MORE", "fits_screen", "footer_lines", "screen_text"]

# The gateway's limit for one screen, in GSM-7 characters (what the handset shows).
MAX_SCREEN = 182
MORE = "00"
BACK = "0"

# GSM-7's extension characters cost two septets (an escape first); look-alikes of one keep a
# character one septet, so a screen's length in characters is its length on the handset.
_ONE_SEPTET = str.maketrans(
    {
        "{": "(",
        "}": ")",
        "[": "(",
        "]": ")",
        "~": "-",
        "|": "/",
        "\\": "/",
        "^": "",
        "€": "EUR",
        "\f": " ",
    }
)


def screen_text(text: str) -> str:
    """``text`` as a USSD screen shows it: GSM-7, one septet a character. What has no GSM-7
    look-alike (an emoji a resident typed) becomes "?": one such character would send the
    whole screen as UCS-2, where far fewer than 182 characters fit."""
    shown = to_gsm7(text).translate(_ONE_SEPTET)
    if is_gsm7(shown):
        return shown
    return "".join(ch if is_gsm7(ch) else "?" for ch in shown)


def footer_lines(locale: str, *, more: bool, back: bool = True) -> list[str]:
    """The last lines of a page: "00 More" when another page follows, "0 Back"."""
    lines = [f"{MORE} " + screen_text(tr(locale, N_("More")))] if more else []
    if back:
        lines.append(f"{BACK} " + screen_text(tr(locale, N_("Back"))))
    return lines


def fits_screen(
    text: str, choices: Sequence[str] = (), *, locale: str = "en", more: bool = False
) -> bool:
    """Whether a text and its numbered choices fit one screen with its footer ("0 Back", and
    "00 More" with ``more``), as the resident reads them in ``locale``."""
    lines = [
        screen_text(text).strip(),
        *(screen_text(f"{n} {label}") for n, label in enumerate(choices, 1)),
        *footer_lines(locale, more=more),
    ]
    return len("\n".join(line for line in lines if line)) <= MAX_SCREEN
