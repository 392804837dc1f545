"""A new resident who writes in af, zu or xh is answered in that language from the privacy
notice on, with one option to go back to the language they would have had."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from conversations.consent import PRIVACY_NOTICE
from conversations.turn import TurnResult
from forms_runtime.effects import Ask, Notice
from forms_runtime.i18n import tr
from storage.models import Resident
from tests.conversations.conftest import Harness


def _last_ask(result: TurnResult) -> Ask:
    asks = [e for e in result.effects if isinstance(e, Ask)]
    assert asks, result.effects
    return asks[-1]


def _notices(result: TurnResult) -> list[str]:
    return [e.message for e in result.effects if isinstance(e, Notice)]


async def _stored_locale(h: Harness) -> str:
    async with h.sessionmaker() as session:
        return str(await session.scalar(select(Resident.locale)))


@pytest.mark.parametrize(
    ("first_words", "locale"),
    [
        ("Ek wil 'n slaggat aanmeld", "af"),
        ("Sawubona, amanzi ayaphuma emgwaqweni", "zu"),
        ("Molo, amanzi ayavuza esitalatweni", "xh"),
    ],
)
async def test_the_first_words_choose_the_language(
    harness: Harness, first_words: str, locale: str
) -> None:
    first = await harness.say(first_words)
    assert first.locale == locale
    assert _notices(first)[0] == tr(locale, PRIVACY_NOTICE)
    question = _last_ask(first)
    assert question.options[-1].id == "language:en"
    assert question.options[-1].label == "English"
    assert await _stored_locale(harness) == locale


async def test_one_tap_goes_back_to_english_and_asks_the_same_question(harness: Harness) -> None:
    first = await harness.say("Ek wil 'n slaggat aanmeld")
    assert _last_ask(first).options[0].id == "pothole"
    back = await harness.say(option_id="language:en")
    assert back.locale == "en"
    assert "Language changed to English." in _notices(back)
    again = _last_ask(back)
    assert again.options[0].id == "pothole" and again.options[0].label == "Pothole or road damage"
    assert "language:en" not in [o.id for o in again.options]  # offered once only
    assert await _stored_locale(harness) == "en"


async def test_on_sms_the_way_back_is_its_number(harness: Harness) -> None:
    harness.channel = "sms"
    first = await harness.say("Ek wil 'n slaggat aanmeld")
    number = len(_last_ask(first).options)
    back = await harness.say(str(number))
    assert back.locale == "en" and "Language changed to English." in _notices(back)


async def test_answering_the_question_keeps_the_detected_language(harness: Harness) -> None:
    await harness.say("Ek wil 'n slaggat aanmeld")
    chose = await harness.say("1")  # the pothole form, in Afrikaans
    assert chose.locale == "af"
    assert _last_ask(chose).step_id == "consent"
    # The switch was for that one question: a later "3" is not "English".
    assert "language:en" not in [o.id for o in _last_ask(chose).options]


async def test_english_and_names_keep_the_default(harness: Harness) -> None:
    first = await harness.say("There is a pothole on Main Road")
    assert first.locale == "en"
    assert "language:en" not in [o.id for o in _last_ask(first).options]


async def test_a_returning_resident_is_not_switched_by_a_word(harness: Harness) -> None:
    await harness.say("pothole")
    later = await harness.say("Sawubona")
    assert later.locale == "en"


async def test_the_channel_language_agreeing_offers_no_switch(harness: Harness) -> None:
    first = await harness.say("Sawubona, amanzi ayaphuma emgwaqweni", language_hint="zu")
    assert first.locale == "zu"
    assert not any(o.id.startswith("language:") for o in _last_ask(first).options)
