"""Area alerts through the real turn loop: topics, MY ALERTS, UNSUBSCRIBE 2 and ALL, the most a
resident may have, an ambiguous place, a pin, the offer after a report, other languages, and
bare UNSUBSCRIBE still an opt-out."""

from __future__ import annotations

from sqlalchemy import select

from forms_runtime.effects import Ask, Notice
from forms_runtime.gazetteer import default_gazetteer
from storage.models import Resident, Subscription
from tests.conversations.conftest import Harness


def _said(result: object) -> str:
    return " ".join(
        e.message if isinstance(e, Notice) else e.prompt
        for e in result.effects  # type: ignore[attr-defined]
        if isinstance(e, Notice | Ask)
    )


async def _alerts(h: Harness) -> list[tuple[str, str]]:
    async with h.sessionmaker() as session:
        rows = await session.execute(
            select(Subscription.label, Subscription.topics).distinct().order_by(Subscription.label)
        )
        return [(label, topics) for label, topics in rows]


async def test_topics_list_and_unsubscribe_one_or_all(harness: Harness) -> None:
    await harness.say("hello")
    said = _said(await harness.say("subscribe water Khayelitsha"))
    assert "water" in said and "Khayelitsha" in said
    await harness.say("alerts ward 94")
    listed = _said(await harness.say("my alerts"))
    assert "1. Khayelitsha (water)" in listed and "2. ward 94 (all news)" in listed
    assert "UNSUBSCRIBE" in listed
    removed = _said(await harness.say("unsubscribe 1"))
    assert "no longer get news for Khayelitsha" in removed
    assert await _alerts(harness) == [("ward 94", ",all,")]
    assert "no alert 5" in _said(await harness.say("unsubscribe 5"))
    await harness.say("unsubscribe all")
    assert await _alerts(harness) == []
    assert "You have no alerts" in _said(await harness.say("my alerts"))
    # Bare UNSUBSCRIBE is what Twilio reads as an opt-out: it stops everything, as STOP does.
    await harness.say("unsubscribe")
    async with harness.sessionmaker() as session:
        resident = await session.scalar(select(Resident))
    assert resident is not None and resident.opted_out_at is not None


async def test_at_most_ten_alerts(harness: Harness) -> None:
    await harness.say("hello")
    for ward in range(1, 11):
        await harness.say(f"subscribe ward {ward}")
    said = _said(await harness.say("subscribe ward 11"))
    assert "10 alerts, the most there can be" in said
    assert len(await _alerts(harness)) == 10
    assert "already get news for ward 3" in _said(await harness.say("subscribe ward 3"))


async def test_an_ambiguous_place_is_a_choice(harness: Harness) -> None:
    await harness.say("hello")
    match = default_gazetteer().match_place("Joe Slovo")
    assert match.best is None and len(match.candidates) > 1
    asked = await harness.say("subscribe Joe Slovo")
    (question,) = [e for e in asked.effects if isinstance(e, Ask)]
    assert [o.label for o in question.options] == [c.name for c in match.candidates]
    chosen = match.candidates[0]
    said = _said(await harness.say("1"))
    assert chosen.name in said or "cannot" in said or "not which ward" in said
    if chosen.wards:
        assert (await _alerts(harness))[0][0] == chosen.name


async def test_a_pin(harness: Harness) -> None:
    await harness.say("hello")
    asked = _said(await harness.say("subscribe"))
    assert "Send your location" in asked
    said = _said(await harness.pin(-34.0363, 18.6776))
    assert "your pin" in said
    async with harness.sessionmaker() as session:
        rows = (await session.scalars(select(Subscription).order_by(Subscription.id))).all()
    # The pin's ward first, then every ward within its 500 m (it lies by a boundary).
    wards = default_gazetteer().wards_near(-34.0363, 18.6776, 500)
    assert [r.ward for r in rows] == list(wards) and len(wards) > 1
    assert {(r.radius_m, r.latitude, r.label) for r in rows} == {
        (500, -34.0363, "pin -34.0363,18.6776")
    }


async def test_the_daily_digest_is_a_topic_of_its_own(harness: Harness) -> None:
    await harness.say("hello")
    await harness.say("subscribe water ward 94")
    said = _said(await harness.say("subscribe reports ward 94"))
    assert "You will also get a daily digest of reports for ward 94" in said
    assert await _alerts(harness) == [("ward 94", ",water,reports,")]
    assert "1. ward 94 (water, a daily digest of reports)" in _said(await harness.say("my alerts"))
    assert "already get news" in _said(await harness.say("subscribe reports ward 94"))
    # "All news" is everything but the digest, which stays as it was asked for.
    await harness.say("subscribe all ward 94")
    assert await _alerts(harness) == [("ward 94", ",all,reports,")]
    await harness.say("taal af")
    said = _said(await harness.say("teken in verslae wyk 12"))
    assert "daaglikse opsomming van meldings" in said


async def test_the_offer_after_a_report(harness: Harness) -> None:
    from tests.conversations.test_turn import _complete

    await harness.say("hello")
    done = await _complete(harness, await harness.say(option_id="pothole"))
    offered = [e for e in done.effects if isinstance(e, Ask)]
    assert offered and offered[-1].step_id == "area_news"
    said = _said(await harness.say("yes"))
    assert "You will get all news for" in said
    ((label, topics),) = await _alerts(harness)
    assert topics == ",all," and label in said
    # A second report in the same area: no offer again.
    again = await _complete(harness, await harness.say(option_id="pothole"))
    assert not [e for e in again.effects if isinstance(e, Ask) and e.step_id == "area_news"]


async def test_in_isizulu(harness: Harness) -> None:
    await harness.say("hello")
    await harness.say("language zu")
    said = _said(await harness.say("bhalisa amanzi ward 94"))
    assert said.startswith("Uzothola amanzi")
    listed = _said(await harness.say("izexwayiso zami"))
    assert "1. ward 94 (amanzi)" in listed
    assert "Ngeke usazithola" in _said(await harness.say("zikhiphe 1"))
