"""One photo limit: what the channels screen, the engine accepts and the media proxy serves."""

from __future__ import annotations

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from channels.media import media_problem
from channels.media_fetch import MediaRefused, checked
from channels.screening import screen
from channels.types import InboundKind, InboundMessage
from forms_runtime.answers import MAX_PHOTO_BYTES, PHOTO_TOO_BIG
from forms_runtime.effects import MediaRef
from forms_runtime.i18n import locales_dir

JPEG_HEAD = b"\xff\xd8\xff\xe0"


def _photo(size: int) -> MediaRef:
    return MediaRef(url="https://api.twilio.com/x", content_type="image/jpeg", size=size)


def test_the_message_names_the_limit() -> None:
    assert f"{MAX_PHOTO_BYTES // (1024 * 1024)} MB" in PHOTO_TOO_BIG


def test_a_photo_at_the_limit_passes_every_check() -> None:
    assert media_problem(_photo(MAX_PHOTO_BYTES)) is None
    body = JPEG_HEAD + b"\x00" * (MAX_PHOTO_BYTES - len(JPEG_HEAD))
    assert checked(body).content_type == "image/jpeg"


def test_a_photo_over_the_limit_is_refused_with_the_engines_message() -> None:
    message = InboundMessage(
        channel="whatsapp",
        address="+27831234567",
        message_id="MM1",
        kind=InboundKind.MEDIA,
        media=(_photo(MAX_PHOTO_BYTES + 1),),
    )
    assert screen(message).notice == PHOTO_TOO_BIG
    with pytest.raises(MediaRefused) as refused:
        checked(JPEG_HEAD + b"\x00" * MAX_PHOTO_BYTES)
    assert refused.value.too_large


def test_the_message_is_translated_in_every_catalog() -> None:
    root = locales_dir()
    for locale in ("af", "zu", "xh"):
        with (root / locale / "LC_MESSAGES" / "citybot.po").open("rb") as f:
            catalog: Catalog = read_po(f)
        entry = catalog.get(PHOTO_TOO_BIG)
        assert entry is not None and entry.string, locale
