"""What goes into the engine (``Inbound``) and what comes out (effects).

Effects carry texts already translated into the resident's locale; a channel only decides how to
show them (buttons, numbered options, SMS segments). The engine never sends anything itself.

Example::

    state, effects = step(form, state, Inbound(text="potole"))
    # effects == [Ask(step_id="size", prompt="How big is it?", options=(...), ...)]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "Ask",
    "Cancelled",
    "Contribute",
    "Effect",
    "GeoPoint",
    "Handoff",
    "Inbound",
    "InputKind",
    "MediaRef",
    "Notice",
    "OptionView",
    "Reject",
    "Review",
    "ReviewItem",
    "Submit",
]


@dataclass(frozen=True, slots=True)
class GeoPoint:
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class MediaRef:
    """A photo or file the resident sent, kept as a reference, never as bytes."""

    url: str
    content_type: str
    size: int | None = None


@dataclass(frozen=True, slots=True)
class Inbound:
    """One thing a resident said. Exactly one of the fields is usually set.

    ``option_id`` comes from a tapped button; ``received_at`` makes "today" testable.
    """

    text: str | None = None
    option_id: str | None = None
    location: GeoPoint | None = None
    media: MediaRef | None = None
    received_at: datetime | None = None


class InputKind(StrEnum):
    """What kind of answer a question expects; channels pick widgets from it."""

    TEXT = "text"
    NUMBER = "number"
    YES_NO = "yes_no"
    CHOICE = "choice"
    MULTI_CHOICE = "multi_choice"
    DATE = "date"
    PHONE = "phone"
    EMAIL = "email"
    NAME = "name"
    LOCATION = "location"
    PHOTO = "photo"
    CONFIRM = "confirm"


@dataclass(frozen=True, slots=True)
class OptionView:
    id: str
    label: str


@dataclass(frozen=True, slots=True)
class Ask:
    step_id: str
    prompt: str
    kind: InputKind
    options: tuple[OptionView, ...] = ()
    hint: str | None = None
    optional: bool = False
    # 1-based position and total of the steps that apply, for "Question 2 of 5".
    position: int = 0
    total: int = 0


@dataclass(frozen=True, slots=True)
class Reject:
    """The answer could not be used; an ``Ask`` for the same question follows."""

    message: str


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the resident should know that is not a question (form restarted, skipped...)."""

    message: str


@dataclass(frozen=True, slots=True)
class ReviewItem:
    number: int
    step_id: str
    label: str
    value: str


@dataclass(frozen=True, slots=True)
class Review:
    """Check your answers: numbered items and how to send or change them."""

    title: str
    items: tuple[ReviewItem, ...]
    prompt: str
    options: tuple[OptionView, ...] = ()


@dataclass(frozen=True, slots=True)
class Submit:
    """The validated answers, ready to be stored and filed. JSON-serialisable ``answers``."""

    form_id: str
    form_version: int
    service_code: str
    locale: str
    answers: dict[str, Any] = field(default_factory=dict)
    confirmation: str = ""


@dataclass(frozen=True, slots=True)
class Contribute:
    """One answer to an optional question asked after the report (an ``aggregate_only`` step):
    the conversation layer stores it apart from the report, linked to it only so figures can be
    counted, and never shows it to anyone per resident. ``special`` when it is special personal
    information, answered after its own consent question."""

    form_id: str
    step_id: str
    value: Any
    special: bool = False


@dataclass(frozen=True, slots=True)
class Cancelled:
    message: str


@dataclass(frozen=True, slots=True)
class Handoff:
    """The form says a person is needed now (a step's or an option's ``handoff``): the
    conversation layer queues it for staff, urgently, and tells the resident ``message`` (the
    form's reason, translated). The form's state has moved on: after the handback it carries on
    with the next question. ``step_id`` is the step that asked, for the agent."""

    form_id: str
    step_id: str
    message: str
    # The English source of the reason, for the agent's transcript.
    reason: str


Effect = Ask | Reject | Notice | Review | Submit | Contribute | Cancelled | Handoff
