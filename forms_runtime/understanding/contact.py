"""Phone numbers, email addresses and names, checked without any network call.

Example::

    normalise_phone("083 123 4567")           # '+27831234567'
    parse_email("Thandi@Example.CO.ZA")       # 'Thandi@example.co.za'
    parse_name("  Nomsa   van der Merwe ")    # 'Nomsa van der Merwe'
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import phonenumbers

from forms_runtime.understanding.text import clean_text

__all__ = ["normalise_phone", "parse_email", "parse_name"]

# Phone answers are short; anything longer is not a number worth parsing.
_PHONE_MAX = 40
_PHONE_CHARS = re.compile(r"[+\d][\d\s().\-/]*\d")


@lru_cache(maxsize=2048)
def _phone(candidate: str, region: str) -> str | None:
    attempts = [candidate]
    digits = "".join(ch for ch in candidate if ch in "0123456789")
    if not candidate.startswith("+") and not digits.startswith("0") and len(digits) > 9:
        # "27831234567": the country code typed without its plus.
        attempts.append("+" + digits)
    for attempt in attempts:
        try:
            number = phonenumbers.parse(attempt, region)
        except phonenumbers.NumberParseException:
            continue
        national = str(number.national_number)
        # The metadata accepts some short codes (ZA "083 123"); a number a crew can phone back
        # has at least 7 digits, and every South African one has 9 after the trunk 0.
        if len(national) < (9 if number.country_code == 27 else 7):
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def normalise_phone(text: str, region: str = "ZA") -> str | None:
    """A valid phone number in E.164 form, or None.

    Example::

        normalise_phone("+27 83 123 4567")   # '+27831234567'
    """
    cleaned = clean_text(text, 100)
    if not cleaned or len(cleaned) > _PHONE_MAX:
        return None
    match = _PHONE_CHARS.search(cleaned)
    if match is None:
        return None
    return _phone(match.group(0), region.upper() if region else "ZA")


# Characters an address may not contain anywhere (RFC 5322 specials, quotes, whitespace).
_EMAIL_FORBIDDEN = frozenset(' \t\n<>()[]\\,;:"')
# A domain label: letters or digits (any script), hyphens inside only.
_DOMAIN_LABEL = re.compile(r"^[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?$")


def parse_email(text: str) -> str | None:
    """A syntactically valid email address with its domain lower-cased, or None.

    Only the form is checked (one @, a dotted domain, no spaces); whether the mailbox exists is
    not, because that needs the network.

    Example::

        parse_email("mailto:Sipho@Gmail.com")   # 'Sipho@gmail.com'
    """
    cleaned = clean_text(text, 300)
    if cleaned.lower().startswith("mailto:"):
        cleaned = cleaned[7:]
    # Residents paste addresses with a trailing full stop or inside <...>.
    cleaned = cleaned.rstrip(".").strip("<>")
    if not cleaned or len(cleaned) > 254 or cleaned.count("@") != 1:
        return None
    if any(ch in _EMAIL_FORBIDDEN for ch in cleaned):
        return None
    local, domain = cleaned.split("@")
    if not local or len(local) > 64 or local[0] == "." or local[-1] == "." or ".." in local:
        return None
    domain = domain.lower()
    labels = domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        return None
    if len(labels[-1]) < 2 or labels[-1].isdigit():
        return None
    return f"{local}@{domain}"


_NAME_MAX = 100
_APOSTROPHES = frozenset("'’ʼ`")
_HYPHENS = frozenset("-‐‑")
_URL_LIKE = re.compile(r"://|www\.|\.\w", re.IGNORECASE)


def parse_name(text: str) -> str | None:
    """A person's name as typed (trimmed, spaces folded), or None when it cannot be a name.

    Letters of any script with their accents, apostrophes, hyphens, spaces and full stops after
    initials are allowed; digits, email addresses and links are not.

    Example::

        parse_name("Zoë O’Neill-Mthembu")   # 'Zoë O’Neill-Mthembu'
    """
    cleaned = clean_text(text, _NAME_MAX * 2)
    if not cleaned or len(cleaned) > _NAME_MAX or _URL_LIKE.search(cleaned):
        return None
    has_letter = False
    for ch in cleaned:
        if ch.isalpha():
            has_letter = True
        elif ch == " " or ch == "." or ch in _APOSTROPHES or ch in _HYPHENS:
            continue
        elif unicodedata.category(ch)[0] != "M":
            return None
    return cleaned if has_letter else None
