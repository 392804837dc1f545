"""``citybot chat``: the terminal goes through the same turn loop and router as every channel."""

from __future__ import annotations

import io
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.commands.chat import ChatSession
from forms_runtime.loader import standard_forms
from forms_runtime.sms import segments


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # One database for the module (migrations once); each chat is a resident of its own.
    yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('chat') / 'chat.sqlite3'}"


def chat(
    database: str,
    lines: list[str],
    *,
    channel: str = "terminal",
    locale: str = "en",
    form_id: str | None = None,
) -> tuple[int, str]:
    out = io.StringIO()
    session = ChatSession(
        channel=channel,
        locale=locale,
        out=out,
        database_url=database,
        address=uuid.uuid4().hex,
    )
    code = session.run(io.StringIO("".join(line + "\n" for line in lines)), form_id=form_id)
    return code, out.getvalue()


POTHOLE_BY_SMS = [
    "pothole",
    "1",
    "yes",
    "/location -33.9249 18.4241",
    "1",
    "1",
    "no",
    "skip",
    "no",
    "send",
]


def test_a_pothole_completed_by_sms_shows_segments_and_the_reference(database: str) -> None:
    code, out = chat(database, POTHOLE_BY_SMS, channel="sms")
    assert code == 0
    assert "[SMS: 1 segment, GSM-7]" in out
    assert "Reply 1 for" in out
    assert "Check your answers" in out
    assert "Your reference is CT-" in out and "not sent to the city" in out
    # Every SMS shown fits three segments.
    for block in out.split("[SMS: ")[1:]:
        text = block.split("]\n", 1)[1].split("\n\n(")[0].rstrip("\n")
        assert segments(text) <= 3


def test_free_text_picks_the_service_as_on_every_channel(database: str) -> None:
    _, out = chat(database, ["water is pouring out of the road"])
    assert "Water leak or burst pipe" in out
    assert "Hello, this is the City's service line" in out  # the privacy notice, once


def test_stop_help_and_commands_work_in_the_terminal(database: str) -> None:
    _, out = chat(database, ["help", "menu", "language", "4", "STOP", "pothole"])
    assert "Describe the problem in a few words" in out  # HELP
    assert "Which language do you want?" in out
    assert "Ulwimi lutshintshelwe kwi-isiXhosa." in out  # switched to isiXhosa
    # STOP opts out (in the resident's language), and after it the bot says nothing more.
    assert out.rstrip().endswith("Thumela START ukuze uphinde usebenzise le nkonzo.")


def test_telegram_shows_buttons_and_a_location_button(database: str) -> None:
    _, out = chat(database, ["pothole", "1"], channel="telegram", form_id=None)
    assert "[1: Yes]" in out  # consent, as buttons


def test_a_form_opened_directly_in_isizulu(database: str) -> None:
    _, out = chat(database, ["yebo"], locale="zu", form_id="pothole")
    assert "Thumela" in out  # the location hint in isiZulu


def test_an_unknown_form_is_exit_2(database: str) -> None:
    code, out = chat(database, [], form_id="nope")
    assert code == 2
    assert "pothole" in out


def test_a_broken_location_says_how_to_type_it(database: str) -> None:
    _, out = chat(database, ["pothole", "/location north"])
    assert "Type /location LATITUDE LONGITUDE" in out


@pytest.mark.parametrize("form_id", sorted(standard_forms()))
def test_every_standard_form_starts_on_every_channel(database: str, form_id: str) -> None:
    for channel in ("terminal", "sms", "whatsapp", "telegram"):
        code, out = chat(database, ["/quit"], channel=channel, form_id=form_id)
        assert code == 0
        assert out.strip()


def test_the_command_reads_piped_input(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat", "--channel", "sms", "--form", "pothole"],
        input="yes\n/location -33.9249 18.4241\n1\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "How big" in result.stdout or "size" in result.stdout.lower()
