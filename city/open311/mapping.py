"""How a citybot form and its answers map onto GeoReport v2, in both directions of the wire.

One mapping serves the built-in server (services and service definitions made from the forms)
and the filer (a ``ServiceRequestDraft`` made from a submission), so what the server asks for is
exactly what the bot sends:

- a ``location`` step becomes ``lat``/``long`` (the pin, or a typed place's representative
  point), ``address_string`` (the text as typed) and "Ward:", area type and precision lines in
  the description; a ``photo`` becomes
  ``media_url``; ``name``/``phone``/``email`` steps become the spec's own personal fields;
- every other step becomes an attribute whose code is the step id: text -> string,
  long_text -> text, number -> number, date -> datetime, choice and yes_no -> singlevaluelist,
  multi_choice -> multivaluelist. Steps with a ``when`` are never ``required`` for the city,
  because the resident is asked them only sometimes.

Example::

    definition = definition_from_form(forms["pothole"])
    draft = draft_from_answers(forms["pothole"], submission.answers, reference="CT-7K2M9Q")
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from city.open311.types import (
    Attribute,
    AttributeValue,
    Service,
    ServiceDefinition,
    ServiceRequestDraft,
)
from forms_runtime.model import Form, Step, StepType

__all__ = [
    "definition_from_form",
    "draft_from_answers",
    "option_id_for",
    "service_from_form",
    "step_id_for",
    "to_identifier",
]

_DATATYPES: dict[StepType, str] = {
    StepType.TEXT: "string",
    StepType.LONG_TEXT: "text",
    StepType.NUMBER: "number",
    StepType.DATE: "datetime",
    StepType.CHOICE: "singlevaluelist",
    StepType.YES_NO: "singlevaluelist",
    StepType.MULTI_CHOICE: "multivaluelist",
}
# Steps that fill the spec's own fields rather than attributes.
_STANDARD_FIELDS = frozenset(
    {StepType.LOCATION, StepType.PHOTO, StepType.NAME, StepType.PHONE, StepType.EMAIL}
)
_YES_NO = (AttributeValue("yes", "Yes"), AttributeValue("no", "No"))


def to_identifier(text: str, prefix: str = "x") -> str:
    """A form id for a city's code or key (``"WHISHETN"`` -> ``whishetn``, ``"123"`` -> ``x_123``).

    ``citybot forms import-open311`` names steps and options with it, and the filer maps answers
    back to the city's codes by applying it to the service definition, so it must stay stable.
    """
    slug = re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")
    if not slug or not slug[0].isalpha():
        slug = f"{prefix}_{slug}".rstrip("_")
    return slug


def step_id_for(attribute_code: str) -> str:
    return to_identifier(attribute_code, "q")


def option_id_for(value_key: str) -> str:
    return to_identifier(value_key, "v")


def service_from_form(form: Form) -> Service:
    return Service(
        service_code=form.service_code,
        service_name=form.title,
        description=form.description,
        metadata=any(s.type not in _STANDARD_FIELDS for s in form.steps),
        type="realtime",
        keywords=form.keywords.get("en", ()),
        group=form.group,
    )


def _attribute(step: Step, order: int) -> Attribute:
    values: tuple[AttributeValue, ...] = (
        _YES_NO
        if step.type is StepType.YES_NO
        else tuple(AttributeValue(o.id, o.label) for o in step.options)
    )
    return Attribute(
        code=step.id,
        datatype=_DATATYPES.get(step.type, "string"),
        description=step.prompt,
        required=step.required and step.when is None,
        variable=True,
        order=order,
        datatype_description=step.hint,
        values=values,
    )


def definition_from_form(form: Form) -> ServiceDefinition:
    steps = [s for s in form.steps if s.type not in _STANDARD_FIELDS]
    return ServiceDefinition(
        service_code=form.service_code,
        attributes=tuple(_attribute(s, i) for i, s in enumerate(steps, start=1)),
    )


def _attribute_value(step: Step, value: Any) -> str | list[str]:
    if step.type is StepType.YES_NO:
        return "yes" if value else "no"
    if step.type is StepType.MULTI_CHOICE:
        return [str(v) for v in value]
    if step.type is StepType.NUMBER and isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _city_codes(
    definition: ServiceDefinition | None,
) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Step id -> attribute code, and per step option id -> value key, from a city's definition."""
    if definition is None:
        return {}, {}
    codes = {step_id_for(a.code): a.code for a in definition.attributes if a.variable}
    keys = {
        step_id_for(a.code): {option_id_for(v.key): v.key for v in a.values}
        for a in definition.attributes
    }
    return codes, keys


def draft_from_answers(
    form: Form,
    answers: Mapping[str, Any],
    *,
    reference: str | None = None,
    definition: ServiceDefinition | None = None,
    photo_url: Callable[[str], str] | None = None,
) -> ServiceRequestDraft:
    """The report to POST for a submission's answers.

    ``photo_url(step_id)`` gives the URL the city fetches a photo from: the filer passes the
    media proxy's signed link, because the stored reference (``tg-file://...``, a Twilio media
    URL) needs credentials the city does not have. Without it the stored reference is sent.

    Personal answers are present only when the resident gave them with consent (the conversation
    core skips personal steps otherwise), so whatever is present is sent. With the city's
    ``definition`` (forms imported from a city), step and option ids are turned back into the
    city's own attribute codes and value keys.
    """
    codes, keys = _city_codes(definition)
    lat = long = None
    address = media_url = first_name = last_name = phone = email = None
    attributes: dict[str, str | list[str]] = {}
    lines = [form.title]
    for step in form.steps:
        value = answers.get(step.id)
        if value is None or value == "" or value == []:
            continue
        if step.type is StepType.LOCATION and isinstance(value, Mapping):
            # A typed place sends its representative point and the text as typed, so a crew
            # goes by the words where the point is only the suburb's.
            lat, long = _coordinate(value.get("lat")), _coordinate(value.get("lon"))
            address = value.get("address") or value.get("place")
            lines.extend(_location_lines(value))
        elif step.type is StepType.PHOTO and isinstance(value, Mapping):
            media_url = photo_url(step.id) if photo_url else value.get("url")
        elif step.type is StepType.NAME:
            first_name, _, last_name = str(value).partition(" ")
        elif step.type is StepType.PHONE:
            phone = str(value)
        elif step.type is StepType.EMAIL:
            email = str(value)
        else:
            wire = _attribute_value(step, value)
            step_keys = keys.get(step.id, {})
            if isinstance(wire, list):
                wire = [step_keys.get(v, v) for v in wire]
            else:
                wire = step_keys.get(wire, wire)
            attributes[codes.get(step.id, step.id)] = wire
            if not step.personal:
                lines.append(f"{step.label or step.prompt}: {_english(step, value)}")
    return ServiceRequestDraft(
        service_code=form.service_code,
        description="\n".join(lines),
        lat=lat,
        long=long,
        address_string=str(address) if address else None,
        attributes=attributes,
        media_url=media_url,
        first_name=first_name or None,
        last_name=last_name or None,
        phone=phone,
        email=email,
        reference=reference,
    )


def _location_lines(value: Mapping[str, Any]) -> list[str]:
    """ "Ward: 91 (the place also reaches wards 18, 87)", the area type, and how precise it is."""
    lines = []
    ward = value.get("ward")
    others = [str(w) for w in value.get("wards") or () if str(w) != str(ward)]
    if ward:
        also = f" (the place also reaches wards {', '.join(others)})" if others else ""
        lines.append(f"Ward: {ward}{also}")
    area_type = value.get("area_type")
    if area_type and area_type != "unknown":
        lines.append(f"Area type: {_AREA_TYPES.get(str(area_type), str(area_type))}")
    precision = value.get("precision")
    if precision and value.get("source") == "place":
        approximate = "; the point is approximate" if value.get("approximate") else ""
        lines.append(f"Location: typed, {precision} level{approximate}")
    return lines


_AREA_TYPES = {
    "informal_settlement": "informal settlement",
    "mixed": "suburb with informal settlements",
    "formal": "formal",
}


def _english(step: Step, value: Any) -> str:
    """An answer as city staff read it in the description (English, option labels)."""
    labels = {o.id: o.label for o in step.options}
    if step.type is StepType.YES_NO:
        return "Yes" if value else "No"
    if step.type is StepType.MULTI_CHOICE:
        return ", ".join(labels.get(str(v), str(v)) for v in value)
    return labels.get(str(value), str(value))


def _coordinate(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
