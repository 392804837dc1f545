"""Area alerts: SUBSCRIBE a place, a ward or a pin, with topics; MY ALERTS; UNSUBSCRIBE 2 / ALL.

* "SUBSCRIBE Khayelitsha" (or "alerts Site C", "teken in ...", "bhalisa ..."): the place is
  looked up in the gazetteer; an ambiguous name gets a numbered choice, as forms give; the alert
  covers every ward the place reaches. "SUBSCRIBE WARD 94" or "SUBSCRIBE 94" names a ward.
* A topic first ("SUBSCRIBE water Khayelitsha"): water, electricity, roads, refuse, or all (the
  default), in the four languages.
* "SUBSCRIBE" alone: the area of the resident's latest report, or, with none, the bot asks for
  a pin or the name of their area; a pin covers 500 m around it: its rows are every ward that
  circle reaches, and a broadcast around a point reaches it by distance
  (``notifier.broadcast_audience``).
* "SUBSCRIBE reports Khayelitsha" (``verslae``, ``imibiko``, ``iingxelo``): the daily digest of
  new reports and status changes there (``notifier.digests``). Only by name: a daily message
  costs the city an SMS a day, so "all" news does not include it. A topic added to an area the
  resident already follows joins that alert ("water" and "reports" for Khayelitsha: one alert).
* After a report is filed the bot offers news for its area ("Get news for this area?"), unless
  the resident follows it already.
* MY ALERTS lists them numbered; UNSUBSCRIBE 2 removes one, UNSUBSCRIBE ALL all of them. Bare
  STOP (and bare UNSUBSCRIBE, an opt-out word for Twilio) stops everything, as always.
* At most ``MAX_ALERTS`` alerts per resident. Subscribing twice to the same area keeps one.

An alert is the ``subscriptions`` rows that share its label, one per ward (see
``storage.models.subscriptions``).

Example::

    await subscribe(turn, "water Khayelitsha", gazetteer)
    turn.effects   # [Notice("You will get water news for Khayelitsha (wards 93, 87, ...). ...")]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.consent import yes_no_question
from conversations.turn_context import Turn
from forms_runtime.effects import Ask, InputKind, Notice, OptionView
from forms_runtime.gazetteer import Gazetteer, Place
from forms_runtime.i18n import N_, tr
from storage.models import Submission, Subscription

__all__ = [
    "AREA_NEWS",
    "MAX_ALERTS",
    "PLACE_CHOICE",
    "WARD_COUNT",
    "WHERE",
    "add_wards",
    "answer_area_news",
    "answer_place_choice",
    "answer_where",
    "latest_wards",
    "list_alerts",
    "offer_area_news",
    "subscribe",
    "unsubscribe",
]

# Cape Town's electoral wards (2021 boundaries) are numbered 1 to 116.
WARD_COUNT = 116
MAX_ALERTS = 10
PIN_RADIUS_M = 500
# The bot's own questions, kept in the state envelope under "pending".
AREA_NEWS = "area_news"
PLACE_CHOICE = "alert_place"
WHERE = "alert_where"
_WARD_NUMBER = re.compile(r"^(?:ward|wyk|iwadi|iwodi)?\s*(\d{1,3})$", re.IGNORECASE)
# Topic words residents use, in en/af/zu/xh.
_TOPIC_WORDS = {
    "water": "water",
    "amanzi": "water",
    "electricity": "electricity",
    "power": "electricity",
    "elektrisiteit": "electricity",
    "krag": "electricity",
    "ugesi": "electricity",
    "umbane": "electricity",
    "roads": "roads",
    "road": "roads",
    "paaie": "roads",
    "imigwaqo": "roads",
    "iindlela": "roads",
    "refuse": "refuse",
    "rubbish": "refuse",
    "vullis": "refuse",
    "imfucuza": "refuse",
    "inkunkuma": "refuse",
    "all": "all",
    "alles": "all",
    "konke": "all",
    "reports": "reports",
    "report": "reports",
    "digest": "reports",
    "verslae": "reports",
    "meldings": "reports",
    "imibiko": "reports",
    "iingxelo": "reports",
}
_TOPIC_NAMES = {
    "water": N_("water"),
    "electricity": N_("electricity"),
    "roads": N_("roads"),
    "refuse": N_("refuse"),
    "all": N_("all news"),
    "reports": N_("a daily digest of reports"),
}

_UNKNOWN_PLACE = N_(
    "I do not know that place. Send SUBSCRIBE and the name of your suburb, for example SUBSCRIBE Khayelitsha."
)
_WHERE = N_("Which area? Send your location (a pin), or the name of your suburb or ward.")
_NO_WARD = N_(
    "I know {place}, but not which ward it is in. Send SUBSCRIBE and your ward number, for example SUBSCRIBE WARD 57."
)
_SUBSCRIBED = N_(
    "You will get {topic} for {place}. MY ALERTS lists your alerts; STOP stops all messages."
)
_ALREADY = N_("You already get news for {place}. MY ALERTS lists your alerts.")
_ADDED_TOPIC = N_("You will also get {topic} for {place}. MY ALERTS lists your alerts.")
_TOO_MANY = N_(
    "You have {count} alerts, the most there can be. Send MY ALERTS, then UNSUBSCRIBE and a number to make room."
)
_CHOOSE = N_("Which place do you mean?")
_NONE = N_(
    "You have no alerts. Send SUBSCRIBE and the name of your area, for example SUBSCRIBE Khayelitsha."
)
_LIST = N_("Your alerts: {alerts}. Reply UNSUBSCRIBE and a number to stop one, or UNSUBSCRIBE ALL.")
_REMOVED = N_("You will no longer get news for {place}.")
_REMOVED_ALL = N_("You will no longer get area news. STOP stops all messages.")
_NO_SUCH = N_("You have no alert {number}. Send MY ALERTS to see them.")
_OFFER = N_("Do you want news for this area (water cuts, outages, roadworks)?")
_PIN = N_("your pin")


def _split_topic(argument: str) -> tuple[str, str]:
    first, _, rest = argument.strip().partition(" ")
    topic = _TOPIC_WORDS.get(first.lower())
    if topic is None:
        return "all", argument.strip()
    return topic, rest.strip()


async def _labels(session: AsyncSession, resident_id: int) -> list[tuple[str, str]]:
    """The resident's alerts, oldest first: (label, topics)."""
    rows = await session.execute(
        select(Subscription.label, Subscription.topics, func.min(Subscription.id))
        .where(Subscription.resident_id == resident_id)
        .group_by(Subscription.label, Subscription.topics)
        .order_by(func.min(Subscription.id))
    )
    return [(label, topics) for label, topics, _ in rows]


async def subscribe(turn: Turn, argument: str | None, gazetteer: Gazetteer | None) -> None:
    topic, place = _split_topic(argument or "")
    session = await turn.sql()
    if not place:
        wards = await latest_wards(session, turn.resident_id)
        if wards:
            label = await _latest_place(session, turn.resident_id) or f"ward {wards[0]}"
            await _add(turn, label, wards, topic)
            return
        turn.envelope["pending"] = {"kind": WHERE, "topic": topic}
        turn.say(_where_question(turn.locale))
        return
    number = _WARD_NUMBER.match(place)
    if number is not None and 1 <= int(number.group(1)) <= WARD_COUNT:
        ward = str(int(number.group(1)))
        await _add(turn, f"ward {ward}", (ward,), topic)
        return
    match = gazetteer.match_place(place) if gazetteer is not None else None
    if match is None or (match.best is None and not match.candidates):
        turn.say(Notice(tr(turn.locale, _UNKNOWN_PLACE)))
        return
    if match.best is None:
        names = [c.name for c in match.candidates]
        turn.envelope["pending"] = {"kind": PLACE_CHOICE, "topic": topic, "offered": names}
        turn.say(
            Ask(
                step_id=PLACE_CHOICE,
                prompt=tr(turn.locale, _CHOOSE),
                kind=InputKind.CHOICE,
                options=tuple(OptionView(str(n), name) for n, name in enumerate(names, 1)),
            )
        )
        return
    await _add_place(turn, match.best, topic)


async def _add_place(turn: Turn, found: Place, topic: str) -> None:
    if not found.wards:
        turn.say(Notice(tr(turn.locale, _NO_WARD, place=found.name)))
        return
    await _add(turn, found.name, tuple(found.wards), topic)


async def answer_place_choice(
    turn: Turn, pending: dict[str, Any], gazetteer: Gazetteer | None
) -> bool:
    """The answer to "which place do you mean?"; ``False`` hands other words on."""
    offered = [str(n) for n in pending.get("offered", [])]
    message = turn.message
    raw = (message.option_id or message.text or "").strip()
    chosen = None
    if raw.isdigit() and 1 <= int(raw) <= len(offered):
        chosen = offered[int(raw) - 1]
    else:
        chosen = next((n for n in offered if n.lower() == raw.lower()), None)
    turn.envelope.pop("pending", None)
    if chosen is None or gazetteer is None:
        return False
    place = gazetteer.get(chosen)
    if place is None:
        return False
    await _add_place(turn, place, str(pending.get("topic") or "all"))
    return True


async def answer_where(turn: Turn, pending: dict[str, Any], gazetteer: Gazetteer | None) -> bool:
    """A pin or a place for "which area?"; ``False`` hands other words on."""
    turn.envelope.pop("pending", None)
    topic = str(pending.get("topic") or "all")
    point = turn.message.location
    if point is not None:
        info = gazetteer.locate(point.lat, point.lon) if gazetteer is not None else None
        if info is None or info.ward is None:
            turn.say(Notice(tr(turn.locale, _UNKNOWN_PLACE)))
            return True
        assert gazetteer is not None  # located above
        await _add(
            turn,
            f"pin {point.lat:.4f},{point.lon:.4f}",
            gazetteer.wards_near(point.lat, point.lon, PIN_RADIUS_M),
            topic,
            pin=(point.lat, point.lon),
        )
        return True
    if turn.message.text:
        await subscribe(turn, f"{topic} {turn.message.text}", gazetteer)
        return True
    return False


async def _add(
    turn: Turn,
    label: str,
    wards: Sequence[str],
    topic: str,
    *,
    pin: tuple[float, float] | None = None,
) -> None:
    session = await turn.sql()
    alerts = await _labels(session, turn.resident_id)
    shown = tr(turn.locale, _PIN) if pin else label
    same = [topics for existing, topics in alerts if existing == label]
    if same:
        await _add_topic(turn, label, same[0], topic, shown)
        return
    if len(alerts) >= MAX_ALERTS:
        turn.say(Notice(tr(turn.locale, _TOO_MANY, count=len(alerts))))
        return
    for ward in dict.fromkeys(wards):
        session.add(
            Subscription(
                resident_id=turn.resident_id,
                ward=ward,
                label=label[:120],
                topics=f",{topic},",
                latitude=pin[0] if pin else None,
                longitude=pin[1] if pin else None,
                radius_m=PIN_RADIUS_M if pin else None,
                created_at=turn.now,
            )
        )
    place = shown if len(wards) == 1 or pin else f"{shown} (wards {', '.join(wards)})"
    topic_name = tr(turn.locale, _TOPIC_NAMES[topic])
    turn.say(Notice(tr(turn.locale, _SUBSCRIBED, topic=topic_name, place=place)))


async def _add_topic(turn: Turn, label: str, topics: str, topic: str, shown: str) -> None:
    """A topic for an area the resident follows already joins that alert."""
    have = [t for t in topics.strip(",").split(",") if t]
    if topic in have or ("all" in have and topic != "reports"):
        turn.say(Notice(tr(turn.locale, _ALREADY, place=shown)))
        return
    joined = ["all"] if topic == "all" else [*have, topic]
    if topic == "all" and "reports" in have:
        joined.append("reports")  # "all" news does not include the daily digest
    session = await turn.sql()
    await session.execute(
        update(Subscription)
        .where(Subscription.resident_id == turn.resident_id, Subscription.label == label)
        .values(topics="," + ",".join(joined) + ",")
    )
    topic_name = tr(turn.locale, _TOPIC_NAMES[topic])
    turn.say(Notice(tr(turn.locale, _ADDED_TOPIC, topic=topic_name, place=shown)))


async def add_wards(turn: Turn, wards: tuple[str, ...], label: str | None = None) -> None:
    """Follow ``wards`` under one alert (quietly: the caller says what happened)."""
    session = await turn.sql()
    label = label or f"ward {wards[0]}"
    have = set(
        (
            await session.scalars(
                select(Subscription.ward).where(
                    Subscription.resident_id == turn.resident_id, Subscription.label == label
                )
            )
        ).all()
    )
    for ward in wards:
        if ward not in have:
            session.add(
                Subscription(
                    resident_id=turn.resident_id, ward=ward, label=label, created_at=turn.now
                )
            )


async def list_alerts(turn: Turn) -> None:
    session = await turn.sql()
    alerts = await _labels(session, turn.resident_id)
    if not alerts:
        turn.say(Notice(tr(turn.locale, _NONE)))
        return
    shown = "; ".join(
        f"{n}. {label} ({_topic_names(turn.locale, topics)})"
        for n, (label, topics) in enumerate(alerts, 1)
    )
    turn.say(Notice(tr(turn.locale, _LIST, alerts=shown)))


def _topic_names(locale: str, topics: str) -> str:
    names = [_TOPIC_NAMES.get(t, _TOPIC_NAMES["all"]) for t in topics.strip(",").split(",") if t]
    return ", ".join(tr(locale, n) for n in names or [_TOPIC_NAMES["all"]])


async def unsubscribe(turn: Turn, which: str) -> None:
    session = await turn.sql()
    alerts = await _labels(session, turn.resident_id)
    if which == "all":
        await session.execute(
            delete(Subscription).where(Subscription.resident_id == turn.resident_id)
        )
        turn.say(Notice(tr(turn.locale, _REMOVED_ALL)))
        return
    number = int(which)
    if not 1 <= number <= len(alerts):
        turn.say(Notice(tr(turn.locale, _NO_SUCH, number=number)))
        return
    label, topics = alerts[number - 1]
    await session.execute(
        delete(Subscription).where(
            Subscription.resident_id == turn.resident_id,
            Subscription.label == label,
            Subscription.topics == topics,
        )
    )
    turn.say(Notice(tr(turn.locale, _REMOVED, place=label)))


async def offer_area_news(turn: Turn, label: str, wards: Sequence[str]) -> None:
    """After a report: news for its area, unless the resident follows one of its wards."""
    if not wards:
        return
    session = await turn.sql()
    follows = await session.scalar(
        select(func.count()).where(
            Subscription.resident_id == turn.resident_id, Subscription.ward.in_(list(wards))
        )
    )
    if follows:
        return
    turn.envelope["pending"] = {"kind": AREA_NEWS, "label": label, "wards": list(wards)}
    turn.say(yes_no_question(turn.locale, AREA_NEWS, _OFFER))


async def answer_area_news(turn: Turn, agreed: bool, pending: dict[str, Any]) -> None:
    if not agreed:
        return
    wards = tuple(str(w) for w in pending.get("wards", []))
    await _add(turn, str(pending.get("label") or f"ward {wards[0]}"), wards, "all")


def _where_question(locale: str) -> Ask:
    return Ask(step_id=WHERE, prompt=tr(locale, _WHERE), kind=InputKind.LOCATION)


async def latest_wards(session: AsyncSession, resident_id: int) -> tuple[str, ...]:
    """The wards of the resident's latest report that has one (main ward first)."""
    row = (
        await session.execute(
            select(Submission.ward, Submission.wards)
            .where(Submission.resident_id == resident_id, Submission.ward.is_not(None))
            .order_by(Submission.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return ()
    ward, wards = row
    listed = [str(w) for w in (wards or []) if w]
    return tuple(dict.fromkeys([str(ward), *listed]))


async def _latest_place(session: AsyncSession, resident_id: int) -> str | None:
    return await session.scalar(
        select(Submission.address_string)
        .where(Submission.resident_id == resident_id, Submission.ward.is_not(None))
        .order_by(Submission.id.desc())
        .limit(1)
    )
