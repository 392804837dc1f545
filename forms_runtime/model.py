"""The city form standard as Python values.

A form is loaded once from YAML (see ``forms_runtime.loader``) into these frozen dataclasses and
then shared by every conversation. Texts here are the English source texts; ``forms_runtime.i18n``
translates them per locale through the gettext catalogs.

Example::

    form = load_form("forms_runtime/standard/pothole.yaml")
    form.step("location").type is StepType.LOCATION
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "SPECIAL",
    "Form",
    "Handoff",
    "Option",
    "Step",
    "StepType",
    "Validation",
    "personal_steps",
]


# The one `sensitive:` level: special personal information.
SPECIAL = "special"


class StepType(StrEnum):
    TEXT = "text"
    LONG_TEXT = "long_text"
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


@dataclass(frozen=True, slots=True)
class Handoff:
    """A person is needed: a gas smell, a live wire down. Once the step is answered (and
    ``when`` holds, a condition that may name the step itself), the engine says ``reason`` to
    the resident and the conversation goes to the support queue, ahead of the others."""

    reason: str
    when: str | None = None


@dataclass(frozen=True, slots=True)
class Option:
    id: str
    label: str
    # Extra words that pick this option (English; translated like every other text).
    synonyms: tuple[str, ...] = ()
    # For long lists on SMS: options sharing a group are offered group first.
    group: str | None = None
    # Choosing this option needs a person (see ``Handoff``; an option's has no ``when``).
    handoff: Handoff | None = None
    # The resident's own words: an answer that names no option counts as this one, and the
    # words are not kept (an ``aggregate_only`` choice only: "I describe my gender another way").
    self_described: bool = False


@dataclass(frozen=True, slots=True)
class Validation:
    min: float | None = None
    max: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    # The pattern's own message, in GOV.UK style ("Enter the meter number, 8 digits").
    pattern_message: str | None = None
    # date steps: how far back / ahead an answer may be, in days.
    max_days_past: int | None = None
    max_days_future: int | None = None


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    type: StepType
    prompt: str
    hint: str | None = None
    required: bool = True
    validation: Validation = field(default_factory=Validation)
    # Source text of the `when` condition; parsed by forms_runtime.expressions.
    when: str | None = None
    options: tuple[Option, ...] = ()
    personal: bool = False
    purpose: str | None = None
    # Label used on the review screen; defaults to the prompt.
    label: str | None = None
    handoff: Handoff | None = None
    # Answers kept apart from the report and only ever counted: asked after the report is stored,
    # always optional, never in the submission, never shown to staff per resident.
    aggregate_only: bool = False
    # "special": special personal information (POPIA section 26: health, disability...). Needs
    # `purpose`, its own `consent` question and `aggregate_only` (the loader enforces it).
    sensitive: str | None = None
    # The separate consent question asked before a special step; no means the step is skipped.
    consent: str | None = None
    line: int = 0

    @property
    def special(self) -> bool:
        return self.sensitive == SPECIAL


@dataclass(frozen=True, slots=True)
class Form:
    id: str
    version: int
    title: str
    service_code: str
    description: str
    keywords: dict[str, tuple[str, ...]]
    retention_days: int
    steps: tuple[Step, ...]
    confirmation: str
    review: bool = True
    group: str | None = None
    path: str | None = None

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def index(self, step_id: str) -> int:
        for i, s in enumerate(self.steps):
            if s.id == step_id:
                return i
        raise KeyError(step_id)

    @property
    def report_steps(self) -> tuple[Step, ...]:
        """The steps of the report itself, reviewed and filed."""
        return tuple(s for s in self.steps if not s.aggregate_only)

    @property
    def aggregate_steps(self) -> tuple[Step, ...]:
        """The optional questions asked after the report is stored, counted only."""
        return tuple(s for s in self.steps if s.aggregate_only)

    @property
    def collects_personal_data(self) -> bool:
        return any(s.personal for s in self.steps)

    @property
    def personal_step_ids(self) -> frozenset[str]:
        return frozenset(s.id for s in self.steps if s.personal)


def personal_steps(forms: Mapping[str, Form]) -> dict[str, frozenset[str]]:
    """Which answers are personal, form by form: what an erasure removes (the storage floor
    knows step ids, not forms)."""
    return {form_id: form.personal_step_ids for form_id, form in forms.items()}
