"""What the city is sent for a location: the point, the text as typed, its ward(s), area type
and precision (issue 10, defect 4)."""

from __future__ import annotations

from city.open311.mapping import draft_from_answers
from forms_runtime.effects import Inbound
from forms_runtime.engine import start, step
from forms_runtime.gazetteer import default_gazetteer
from forms_runtime.loader import standard_forms

POTHOLE = standard_forms()["pothole"]


def _location_answer(*texts: str) -> dict[str, object]:
    """The pothole form's own understanding of what a resident typed."""
    state, _ = start(POTHOLE, "en")
    assert state["at"] == "location"  # the pothole form asks where first
    for text in texts:
        state, _ = step(POTHOLE, state, Inbound(text=text))
    answer = state["answers"]["location"]
    assert isinstance(answer, dict)
    return answer


def test_a_typed_town_is_sent_at_its_point_with_the_text_and_every_ward() -> None:
    town = default_gazetteer().get("Khayelitsha")
    assert town is not None
    answer = _location_answer("Khayelitsha", "12 Makhaza Street")
    draft = draft_from_answers(POTHOLE, {"location": answer})
    assert (draft.lat, draft.long) == (town.lat, town.lon)
    assert draft.address_string == "12 Makhaza Street, Khayelitsha"
    lines = draft.description.splitlines()
    others = ", ".join(town.wards[1:])
    assert f"Ward: {town.ward} (the place also reaches wards {others})" in lines
    assert "Area type: suburb with informal settlements" in lines
    assert "Location: typed, street level; the point is approximate" in lines


def test_a_typed_settlement_is_sent_with_its_one_ward() -> None:
    draft = draft_from_answers(POTHOLE, {"location": _location_answer("bida cresent khayelitsha")})
    lines = draft.description.splitlines()
    assert "Ward: 91" in lines
    assert "Area type: informal settlement" in lines
    assert "Location: typed, settlement level" in lines
    assert draft.address_string == "bida cresent khayelitsha"
    assert draft.lat is not None and draft.long is not None


def test_a_pin_is_sent_as_it_was_with_its_ward() -> None:
    answer = {
        "lat": -34.0363,
        "lon": 18.6776,
        "ward": "94",
        "wards": ["94"],
        "source": "gps",
        "area_type": "formal",
        "precision": "pin",
        "place": None,
    }
    draft = draft_from_answers(POTHOLE, {"location": answer})
    assert (draft.lat, draft.long) == (-34.0363, 18.6776)
    lines = draft.description.splitlines()
    assert "Ward: 94" in lines and "Area type: formal" in lines
    assert not any(line.startswith("Location:") for line in lines)
