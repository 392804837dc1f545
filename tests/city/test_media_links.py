"""Signed photo links: round trip, forgery, expiry."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.bootstrap import build_services, close_services
from bot.config import Settings
from city.media_links import ExpiredLink, ForgedLink, MediaLink, MediaLinks

LINKS = MediaLinks("s3cret", "https://bot.city.example/", lifetime_days=1)


def test_a_link_reads_back_as_the_photo_it_names() -> None:
    url = LINKS.url_for(42, "photo", now=1000.0)
    assert url.startswith("https://bot.city.example/media/")
    token = url.rsplit("/", 1)[1]
    assert LINKS.read(token, now=1000.0 + 86399) == MediaLink(42, "photo")
    # Opaque: neither the submission number nor the step shows in the URL.
    assert "photo" not in token and "tg-file" not in token


def test_expired_after_its_lifetime() -> None:
    token = LINKS.token_for(42, "photo", now=1000.0)
    with pytest.raises(ExpiredLink):
        LINKS.read(token, now=1000.0 + 86401)


@pytest.mark.parametrize("token", ["", ".", "abc", "abc.def", "a.b.c", "!!.??", "YQ.YQ"])
def test_anything_else_is_forged(token: str) -> None:
    with pytest.raises(ForgedLink):
        LINKS.read(token)


def test_the_key_is_not_the_session_secret_itself() -> None:
    # A token signed with the raw session secret (as a cookie might be) does not pass.
    import base64
    import hashlib
    import hmac

    payload = b"42.photo.9999999999"
    raw = hmac.new(b"s3cret", payload, hashlib.sha256).digest()
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    with pytest.raises(ForgedLink):
        LINKS.read(f"{b64(payload)}.{b64(raw)}")


def test_step_ids_are_checked_when_signing() -> None:
    with pytest.raises(ValueError):
        LINKS.token_for(1, "photo.evil")


async def test_lifetime_from_the_environment(tmp_path: Path) -> None:
    env = {"CITYBOT_SESSION_SECRET": "x", "CITYBOT_MEDIA_LINK_DAYS": "7"}
    settings = Settings.from_env(
        {**env, "CITYBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'links.sqlite3'}"}
    )
    services = await build_services(settings)
    try:
        assert services.media_links.lifetime_seconds == 7 * 86400
    finally:
        await close_services(services)


def test_a_link_signed_with_an_old_key_verifies_while_the_key_is_listed() -> None:
    old = MediaLinks("old-link-key-0123456789", "https://bot.city.example")
    rotated = MediaLinks(
        ["new-link-key-0123456789", "old-link-key-0123456789"], "https://bot.city.example"
    )
    token = old.token_for(42, "photo")
    assert rotated.read(token) == MediaLink(42, "photo")
    # New links are signed with the first key only: the old key alone refuses them.
    with pytest.raises(ForgedLink):
        old.read(rotated.token_for(43, "photo"))
    with pytest.raises(ForgedLink):
        MediaLinks("new-link-key-0123456789", "https://bot.city.example").read(token)
