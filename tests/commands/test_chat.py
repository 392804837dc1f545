import io
import subprocess
import sys

import pytest

from bot.commands.chat import ChatSession
from forms_runtime.loader import standard_forms
from forms_runtime.sms import segments


def chat(lines, *, channel="terminal", locale="en", form_id=None):
    out = io.StringIO()
    code = ChatSession(channel=channel, locale=locale, out=out).run(
        io.StringIO("".join(line + "\n" for line in lines)), form_id=form_id
    )
    return code, out.getvalue()


POTHOLE_BY_SMS = ["pothole", "/location -33.9249 18.4241", "1", "1", "no", "skip", "no", "send"]


def test_a_pothole_completed_by_sms_shows_segments_and_the_filed_answers():
    code, out = chat(POTHOLE_BY_SMS, channel="sms")
    assert code == 0
    assert "[SMS: 1 segment, GSM-7]" in out
    assert "Reply 1 for" in out
    assert "Check your answers" in out
    assert "(not filed from the terminal; " in out
    # Every SMS shown fits three segments.
    for block in out.split("[SMS: ")[1:]:
        text = block.split("]\n", 1)[1].split("\n\n(")[0].rstrip("\n")
        assert segments(text) <= 3


def test_telegram_shows_buttons_and_a_location_button():
    _, out = chat(["pothole"], channel="telegram")
    assert "[1: Send my location]" in out


def test_a_form_opened_directly_in_isizulu():
    _, out = chat([], locale="zu", form_id="pothole")
    assert "Thumela" in out  # the location hint in isiZulu


def test_an_unknown_form_is_exit_2():
    code, out = chat([], form_id="nope")
    assert code == 2
    assert "pothole" in out


def test_a_broken_location_says_how_to_type_it():
    _, out = chat(["pothole", "/location north"])
    assert "Type /location LATITUDE LONGITUDE" in out


@pytest.mark.parametrize("form_id", sorted(standard_forms()))
def test_every_standard_form_starts_on_every_channel(form_id):
    for channel in ("terminal", "sms", "whatsapp", "telegram"):
        code, out = chat(["/quit"], channel=channel, form_id=form_id)
        assert code == 0
        assert out.strip()


def test_the_command_reads_piped_input():
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat", "--channel", "sms", "--form", "pothole"],
        input="/location -33.9249 18.4241\n1\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "How big" in result.stdout or "size" in result.stdout.lower()
