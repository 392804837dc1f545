"""Photos residents send: kept as references, checked against type and size limits.

A channel never downloads a photo while a resident waits: it records the provider's URL (Twilio's
media URL, or ``tg-file://<file_id>`` for Telegram, resolved with the bot token only when the back
end needs the bytes), the content type and the size if the provider says it.

Example::

    problem = media_problem(MediaRef(url="https://...", content_type="image/gif", size=1000))
    # 'Send the photo as a JPEG, PNG or WebP picture.'  (an English msgid: translate with tr)
"""

from __future__ import annotations

from forms_runtime.effects import MediaRef
from forms_runtime.i18n import N_

__all__ = [
    "ACCEPTED_IMAGE_TYPES",
    "MAX_PHOTO_BYTES",
    "TELEGRAM_FILE_SCHEME",
    "media_problem",
    "telegram_file_id",
    "telegram_file_ref",
]

ACCEPTED_IMAGE_TYPES: frozenset[str] = frozenset({"image/jpeg", "image/png", "image/webp"})
# WhatsApp caps images at 5 MB; a bigger file is not a phone photo of a pothole.
MAX_PHOTO_BYTES = 5 * 1024 * 1024

TELEGRAM_FILE_SCHEME = "tg-file://"

WRONG_TYPE = N_("Send the photo as a JPEG, PNG or WebP picture.")
TOO_BIG = N_("That photo is too big. Send a photo smaller than 5 MB.")


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
        return TOO_BIG
    return None
