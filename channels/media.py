"""Photos residents send: kept as references, checked against type and size limits.

A channel never downloads a photo while a resident waits: it records the provider's URL (Twilio's
media URL, or ``tg-file://<file_id>`` for Telegram, resolved with the bot token only when the back
end needs the bytes), the content type and the size if the provider says it. The size limit is
the engine's (``forms_runtime.answers.MAX_PHOTO_BYTES``), so the two never disagree.

Example::

    problem = media_problem(MediaRef(url="https://...", content_type="image/gif", size=1000))
    # 'Send the photo as a JPEG, PNG or WebP picture.'  (an English msgid: translate with tr)
"""

from __future__ import annotations

from forms_runtime.answers import MAX_PHOTO_BYTES, PHOTO_TOO_BIG, PHOTO_TYPES
from forms_runtime.effects import MediaRef
from forms_runtime.i18n import N_

__all__ = [
    "ACCEPTED_IMAGE_TYPES",
    "TELEGRAM_FILE_SCHEME",
    "media_problem",
    "telegram_file_id",
    "telegram_file_ref",
]

# The engine's list: one answer to "which photos can the city use?".
ACCEPTED_IMAGE_TYPES: frozenset[str] = PHOTO_TYPES

TELEGRAM_FILE_SCHEME = "tg-file://"

WRONG_TYPE = N_("Send the photo as a JPEG, PNG or WebP picture.")


def telegram_file_ref(file_id: str) -> str:
    return TELEGRAM_FILE_SCHEME + file_id


def telegram_file_id(url: str) -> str | None:
    """The Telegram file id behind a ``tg-file://`` reference, else None."""
    return url[len(TELEGRAM_FILE_SCHEME) :] if url.startswith(TELEGRAM_FILE_SCHEME) else None


def media_problem(media: MediaRef) -> str | None:
    """The English msgid telling the resident what to send instead, or None if the photo is fine."""
    content_type = media.content_type.split(";")[0].strip().lower()
    if content_type not in ACCEPTED_IMAGE_TYPES:
        return WRONG_TYPE
    if media.size is not None and media.size > MAX_PHOTO_BYTES:
        return PHOTO_TOO_BIG
    return None
