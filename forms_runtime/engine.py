"""The pure step engine: a form and a state go in, a new state and effects come out.

Nothing here does I/O or awaits; the conversation layer stores the state and carries out the
effects. State is small JSON that names the form and version it belongs to, and never grows with
retries: it holds at most one answer per step, the current position and one pending question.

Example::

    state, effects = start(form, "en")              # -> [Ask(step_id="location", ...)]
    state, effects = step(form, state, Inbound(text="Site C Khayelitsha"))
    ...
    state, effects = step(form, state, Inbound(text="send"))   # -> [Submit(...)]

State keys: ``form``, ``version``, ``locale``, ``at`` (a step id, ``"review"`` or ``"done"``),
``answers`` (step id -> JSON answer; ``None`` for a skipped optional step), and optionally
``pending`` (place candidates awaiting a pick, or a suburb awaiting its street), ``misses`` (unknown place attempts),
``reviewing`` (answering a question from the review screen) and ``skip_personal`` (the resident
declined consent: personal steps are not asked).

After the report is sent, a form with ``aggregate_only`` steps goes on with them (``after``
is true): optional questions, each answer a ``Contribute`` effect stored apart from the report.
A ``sensitive: special`` step is asked only after its own consent question has been answered
yes (``consented`` holds the ids of such steps; a no or a skip passes the step by).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from forms_runtime import answers as answer_kinds
from forms_runtime.effects import (
    Ask,
    Cancelled,
    Contribute,
    Effect,
    Handoff,
    Inbound,
    InputKind,
    Notice,
    OptionView,
    Reject,
    Review,
    ReviewItem,
    Submit,
)
from forms_runtime.expressions import parse_condition
from forms_runtime.gazetteer import Gazetteer, default_gazetteer
from forms_runtime.i18n import LANGUAGE_NAMES, LOCALES, N_, normalise_locale, tr
from forms_runtime.model import Form, Step, StepType
from forms_runtime.understanding.navigation import NAVIGATION_WORDS, Navigation, parse_navigation
from forms_runtime.understanding.text import small_number

__all__ = ["FormState", "applicable_steps", "resume", "start", "step"]

FormState = dict[str, Any]

REVIEW = "review"
DONE = "done"

_KIND_BY_TYPE: dict[StepType, InputKind] = {
    StepType.TEXT: InputKind.TEXT,
    StepType.LONG_TEXT: InputKind.TEXT,
    StepType.NUMBER: InputKind.NUMBER,
    StepType.YES_NO: InputKind.YES_NO,
    StepType.CHOICE: InputKind.CHOICE,
    StepType.MULTI_CHOICE: InputKind.MULTI_CHOICE,
    StepType.DATE: InputKind.DATE,
    StepType.PHONE: InputKind.PHONE,
    StepType.EMAIL: InputKind.EMAIL,
    StepType.NAME: InputKind.NAME,
    StepType.LOCATION: InputKind.LOCATION,
    StepType.PHOTO: InputKind.PHOTO,
}


# --- public API -------------------------------------------------------------------------------


def start(
    form: Form, locale: str, *, skip_personal: bool = False
) -> tuple[FormState, list[Effect]]:
    """Open ``form`` for a resident speaking ``locale`` and ask the first question."""
    state: FormState = {
        "form": form.id,
        "version": form.version,
        "locale": normalise_locale(locale),
        "at": "",
        "answers": {},
    }
    if skip_personal:
        state["skip_personal"] = True
    return _advance(form, state, after=-1, effects=[])


def resume(form: Form, state: FormState) -> tuple[FormState, list[Effect]]:
    """Ask the current question again, e.g. when a resident comes back after a break."""
    stale = _stale(form, state)
    if stale is not None:
        return stale
    state = _copy(state)
    return state, _ask_current(form, state, [])


def step(
    form: Form,
    state: FormState,
    inbound: Inbound,
    *,
    gazetteer: Gazetteer | None = None,
) -> tuple[FormState, list[Effect]]:
    """Take one inbound message and move the form on by at most one question."""
    stale = _stale(form, state)
    if stale is not None:
        return stale
    state = _copy(state)
    if state["at"] == DONE:
        return state, []

    text = inbound.text
    if inbound.option_id is None and text is not None:
        nav = parse_navigation(text)
        if nav is not None:
            handled = _navigate(form, state, nav)
            if handled is not None:
                return handled

    if state["at"] == REVIEW:
        return _review_answer(form, state, inbound)
    at, current = _step_at(form, state["at"])
    if current.special and current.id not in state.get("consented", []):
        return _consent_answer(form, state, at, current, inbound)
    outcome = answer_kinds.understand(
        current,
        inbound,
        locale=state["locale"],
        pending=state.get("pending"),
        misses=int(state.get("misses", 0)),
        today=_today(inbound.received_at),
        gazetteer=gazetteer or default_gazetteer(),
    )
    if isinstance(outcome, answer_kinds.Understood):
        state["answers"][current.id] = outcome.value
        state.pop("pending", None)
        state.pop("misses", None)
        if current.aggregate_only:
            given = Contribute(form.id, current.id, outcome.value, special=current.special)
            return _advance(form, state, after=at, effects=[given])
        needs_person = _handoff(form, current, state)
        return _advance(form, state, after=at, effects=[needs_person] if needs_person else [])
    if isinstance(outcome, answer_kinds.NeedsPick):
        state["pending"] = outcome.pending
        state.pop("misses", None)
        return state, [_pick_question(current, state["locale"], outcome)]
    # Not understood: say what to do, then ask again. Only the miss count changes, so the state
    # stays the same size however often a resident retries.
    if outcome.count_miss:
        state["misses"] = min(int(state.get("misses", 0)) + 1, 9)
    effects: list[Effect] = [Reject(outcome.message)]
    return state, _ask_current(form, state, effects)


def applicable_steps(form: Form, state: FormState) -> list[Step]:
    """The steps that apply given the answers so far (``when`` holds, consent allows): those
    of the report, or after it is sent, the optional questions that follow it."""
    answers = state.get("answers", {})
    skip_personal = bool(state.get("skip_personal"))
    after = bool(state.get("after"))
    return [
        s
        for s, when in _plan(form).gates
        if s.aggregate_only == after
        and not (skip_personal and s.personal)
        and (when is None or when(answers))
    ]


# --- what the engine works out once per form -------------------------------------------------

_Gate = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class _Plan:
    """A form's steps with their ``when`` conditions compiled, and each step's position by id."""

    form: Form
    gates: tuple[tuple[Step, _Gate | None], ...]
    positions: dict[str, int]


# A turn asks several times which steps apply and where a step is: worked out once per form, not
# by looking each condition up by its text and scanning the steps by id every time. Keyed by id()
# like the answer readers' option cache; each plan keeps its form alive so the id cannot be reused
# while it is here, and the cap bounds what forms built on the fly (tests) can leave behind.
_PLANS: dict[int, _Plan] = {}
_MAX_PLANS = 256


def _plan(form: Form) -> _Plan:
    plan = _PLANS.get(id(form))
    if plan is not None and plan.form is form:
        return plan
    gates = tuple(
        (s, None if s.when is None else parse_condition(s.when).evaluate) for s in form.steps
    )
    positions: dict[str, int] = {}
    for i, s in enumerate(form.steps):
        positions.setdefault(s.id, i)
    plan = _Plan(form, gates, positions)
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    _PLANS[id(form)] = plan
    return plan


def _step_at(form: Form, step_id: str) -> tuple[int, Step]:
    """The position and step of ``step_id`` (``KeyError`` when the form has no such step)."""
    i = _plan(form).positions[step_id]
    return i, form.steps[i]


# --- moving through the form -----------------------------------------------------------------


def _advance(
    form: Form, state: FormState, *, after: int, effects: list[Effect]
) -> tuple[FormState, list[Effect]]:
    answers = state["answers"]
    skip_personal = bool(state.get("skip_personal"))
    # The report's steps, or once it is sent the optional questions after it: never a mix.
    phase = bool(state.get("after"))
    nxt: Step | None = None
    gates = _plan(form).gates
    if state.pop("reviewing", False):
        # Back from the review screen: only questions that a change made newly relevant.
        for s, when in gates:
            if (
                s.id not in answers
                and s.aggregate_only == phase
                and not (skip_personal and s.personal)
                and (when is None or when(answers))
            ):
                nxt = s
                state["reviewing"] = True
                break
    else:
        for s, when in gates[after + 1 :]:
            if (
                s.aggregate_only == phase
                and not (skip_personal and s.personal)
                and (when is None or when(answers))
            ):
                nxt = s
                break
    if nxt is not None:
        state["at"] = nxt.id
        return state, _ask_current(form, state, effects)
    if phase:
        state["at"] = DONE
        effects.append(Notice(tr(state["locale"], N_("Thank you for answering."))))
        return state, effects
    if form.review:
        state["at"] = REVIEW
        effects.append(_review(form, state))
        return state, effects
    return _submit(form, state, effects)


def _navigate(
    form: Form, state: FormState, nav: Navigation
) -> tuple[FormState, list[Effect]] | None:
    locale = state["locale"]
    kind = nav.kind
    if state.get("after") and kind not in ("language", "skip"):
        return _navigate_after(form, state, kind)
    if kind == "language" and nav.locale in LOCALES:
        state["locale"] = nav.locale
        notice = Notice(
            tr(
                nav.locale,
                N_("Language changed to {language}."),
                language=LANGUAGE_NAMES[nav.locale],
            )
        )
        return state, _ask_current(form, state, [notice])
    if kind == "cancel":
        state["at"] = DONE
        state["answers"] = {}
        state.pop("pending", None)
        return state, [Cancelled(tr(locale, N_("Your report was cancelled. Nothing was sent.")))]
    if kind == "restart":
        fresh, effects = start(form, locale, skip_personal=bool(state.get("skip_personal")))
        return fresh, [Notice(tr(locale, N_("Starting again from the first question."))), *effects]
    if kind == "back":
        return _go_back(form, state)
    if kind == "skip":
        if state["at"] == REVIEW:
            return None
        at, current = _step_at(form, state["at"])
        if current.required:
            msg = tr(locale, N_("This question needs an answer."))
            return state, _ask_current(form, state, [Reject(msg)])
        state["answers"][current.id] = None
        state.pop("pending", None)
        state.pop("misses", None)
        return _advance(form, state, after=at, effects=[])
    if kind == "change" and state["at"] == REVIEW and nav.number is not None:
        return _change(form, state, nav.number)
    if kind == "send" and state["at"] == REVIEW:
        return _submit(form, state, [])
    return None


def _navigate_after(form: Form, state: FormState, kind: str) -> tuple[FormState, list[Effect]]:
    """The report is sent: cancel ends the optional questions (nothing more is kept); going
    back or changing the report is no longer possible, so the question is asked again."""
    locale = state["locale"]
    if kind == "cancel":
        state["at"] = DONE
        text = N_("Your report was already sent. There are no more questions.")
        return state, [Notice(tr(locale, text))]
    text = N_("Your report was already sent. Reply {skip} to leave out this optional question.")
    notice = Notice(tr(locale, text, skip=_word(locale, "skip")))
    return state, _ask_current(form, state, [notice])


def _word(locale: str, kind: str) -> str:
    """A navigation word as the resident's language says it, for the texts that teach it."""
    return NAVIGATION_WORDS.get(locale, NAVIGATION_WORDS["en"])[kind].upper()


def _consent_answer(
    form: Form, state: FormState, at: int, current: Step, inbound: Inbound
) -> tuple[FormState, list[Effect]]:
    """The answer to a special step's own consent question: yes asks the step, no passes it by
    (nothing is kept, not even that the resident said no)."""
    agreed = inbound.option_id if inbound.option_id in ("yes", "no") else None
    if agreed is None and inbound.text is not None:
        said = answer_kinds.parse_yes_no(inbound.text)
        agreed = None if said is None else ("yes" if said else "no")
    if agreed == "yes":
        state["consented"] = [*state.get("consented", []), current.id]
        return state, _ask_current(form, state, [])
    if agreed == "no":
        state["answers"][current.id] = None
        return _advance(form, state, after=at, effects=[])
    msg = tr(state["locale"], N_("Reply YES or NO."))
    return state, _ask_current(form, state, [Reject(msg)])


def _go_back(form: Form, state: FormState) -> tuple[FormState, list[Effect]]:
    state.pop("pending", None)
    state.pop("misses", None)
    state.pop("reviewing", None)
    steps = applicable_steps(form, state)
    if state["at"] == REVIEW:
        target = steps[-1] if steps else None
    else:
        ids = [s.id for s in steps]
        position = ids.index(state["at"]) if state["at"] in ids else 0
        target = steps[position - 1] if position > 0 else None
    if target is None:
        notice = Notice(tr(state["locale"], N_("This is the first question.")))
        return state, _ask_current(form, state, [notice])
    state["at"] = target.id
    return state, _ask_current(form, state, [])


def _change(form: Form, state: FormState, number: int) -> tuple[FormState, list[Effect]]:
    items = _review_steps(form, state)
    if not 1 <= number <= len(items):
        msg = tr(state["locale"], N_("Choose a number from 1 to {count}."), count=len(items))
        return state, [Reject(msg), _review(form, state)]
    target = items[number - 1]
    state["at"] = target.id
    state["reviewing"] = True
    return state, _ask_current(form, state, [])


def _review_answer(
    form: Form, state: FormState, inbound: Inbound
) -> tuple[FormState, list[Effect]]:
    option = inbound.option_id
    if option == "send":
        return _submit(form, state, [])
    picked = small_number(option[7:]) if option and option.startswith("change:") else None
    if picked is not None:
        return _change(form, state, picked)
    text = (inbound.text or "").strip()
    typed = small_number(text)
    if typed is not None:
        return _change(form, state, typed)
    if text and answer_kinds.parse_yes_no(text) is True:
        return _submit(form, state, [])
    locale = state["locale"]
    words = NAVIGATION_WORDS.get(locale, NAVIGATION_WORDS["en"])
    msg = tr(
        locale,
        N_("Reply {send} to send your report, or {change} and a number to change an answer."),
        send=words["send"].upper(),
        change=words["change"].upper(),
    )
    return state, [Reject(msg), _review(form, state)]


def _handoff(form: Form, current: Step, state: FormState) -> Handoff | None:
    """The ``Handoff`` the answer just given calls for: the step's (its ``when`` holding, which
    may name the step itself), else that of the option chosen."""
    answers = state["answers"]
    value = answers.get(current.id)
    marked = current.handoff
    if marked is not None and marked.when is not None:
        marked = marked if parse_condition(marked.when).evaluate(answers) else None
    if marked is None:
        chosen = value if isinstance(value, list) else [value]
        marked = next((o.handoff for o in current.options if o.handoff and o.id in chosen), None)
    if marked is None:
        return None
    message = tr(state["locale"], marked.reason)
    return Handoff(form_id=form.id, step_id=current.id, message=message, reason=marked.reason)


def _submit(form: Form, state: FormState, effects: list[Effect]) -> tuple[FormState, list[Effect]]:
    kept = {s.id for s in applicable_steps(form, state)}
    answers = {k: v for k, v in state["answers"].items() if k in kept and v is not None}
    locale = state["locale"]
    state["at"] = DONE
    state.pop("pending", None)
    state.pop("reviewing", None)
    effects.append(
        Submit(
            form_id=form.id,
            form_version=form.version,
            service_code=form.service_code,
            locale=locale,
            answers=answers,
            confirmation=tr(locale, form.confirmation),
        )
    )
    follow_up = dict(state, after=True)
    if not applicable_steps(form, follow_up):
        return state, effects
    # The report is stored whatever comes next; the optional questions follow it, said to be
    # optional before the first one.
    intro = N_(
        "Your report is complete. A few optional questions follow; they help the city see who "
        "is affected. Reply {skip} to any of them."
    )
    effects.append(Notice(tr(locale, intro, skip=_word(locale, "skip"))))
    return _advance(form, follow_up, after=-1, effects=effects)


def _stale(form: Form, state: FormState) -> tuple[FormState, list[Effect]] | None:
    """A state made for another form or version cannot be trusted: restart, and say so."""
    if (
        state.get("form") == form.id
        and state.get("version") == form.version
        and _valid_at(form, state)
    ):
        return None
    locale = normalise_locale(state.get("locale") if isinstance(state.get("locale"), str) else None)
    if state.get("after") is True:
        # The report was sent before the form changed: starting it again would ask for a
        # second one. The optional questions end instead.
        text = N_("Your report was already sent. There are no more questions.")
        return {**state, "at": DONE}, [Notice(tr(locale, text))]
    fresh, effects = start(form, locale, skip_personal=bool(state.get("skip_personal")))
    notice = Notice(
        tr(locale, N_("This form has changed since you started, so we are starting it again."))
    )
    return fresh, [notice, *effects]


def _valid_at(form: Form, state: FormState) -> bool:
    at = state.get("at")
    if at in (REVIEW, DONE):
        return isinstance(state.get("answers"), dict)
    return (
        isinstance(at, str)
        and at in _plan(form).positions
        and isinstance(state.get("answers"), dict)
    )


def _copy(state: FormState) -> FormState:
    # Effects must never alias the caller's state: copy the one nested mutable part.
    new = dict(state)
    new["answers"] = dict(state.get("answers", {}))
    return new


def _today(received_at: datetime | None) -> date:
    return received_at.date() if received_at is not None else date.today()


# --- what the resident sees ------------------------------------------------------------------


def _ask_current(form: Form, state: FormState, effects: list[Effect]) -> list[Effect]:
    at = state["at"]
    if at == REVIEW:
        effects.append(_review(form, state))
        return effects
    if at == DONE:
        return effects
    _, current = _step_at(form, at)
    if current.special and current.consent and current.id not in state.get("consented", []):
        effects.append(_consent_question(form, state, current))
        return effects
    pending = state.get("pending")
    if pending:
        effects.append(_pick_question(current, state["locale"], answer_kinds.NeedsPick(pending)))
        return effects
    effects.append(_ask(form, state, current))
    return effects


def _ask(form: Form, state: FormState, s: Step) -> Ask:
    locale = state["locale"]
    steps = applicable_steps(form, state)
    ids = [x.id for x in steps]
    position = ids.index(s.id) + 1 if s.id in ids else 0
    hint = tr(locale, s.hint) if s.hint else None
    if any(o.self_described for o in s.options):
        own = tr(locale, N_("Or say it in your own words."))
        hint = f"{hint}\n{own}" if hint else own
    if (s.personal or s.aggregate_only) and s.purpose:
        why = tr(locale, N_("Why we ask: {purpose}"), purpose=tr(locale, s.purpose))
        hint = f"{hint}\n{why}" if hint else why
    return Ask(
        step_id=s.id,
        prompt=tr(locale, s.prompt),
        kind=_KIND_BY_TYPE[s.type],
        options=answer_kinds.option_views(s, locale),
        hint=hint,
        optional=not s.required,
        position=position,
        total=len(steps),
    )


def _consent_question(form: Form, state: FormState, s: Step) -> Ask:
    """A special step's own yes/no question, with its purpose, before the step itself."""
    locale = state["locale"]
    steps = applicable_steps(form, state)
    ids = [x.id for x in steps]
    why = tr(locale, N_("Why we ask: {purpose}"), purpose=tr(locale, s.purpose or ""))
    return Ask(
        step_id=s.id,
        prompt=tr(locale, s.consent or ""),
        kind=InputKind.YES_NO,
        options=(
            OptionView("yes", tr(locale, N_("Yes"))),
            OptionView("no", tr(locale, N_("No"))),
        ),
        hint=why,
        optional=True,
        position=ids.index(s.id) + 1 if s.id in ids else 0,
        total=len(steps),
    )


def _pick_question(s: Step, locale: str, pick: answer_kinds.NeedsPick) -> Ask:
    """The follow-up to a place answer: pick one of several places, or name a street in one."""
    if pick.pending.get("kind") == "detail":
        return Ask(
            step_id=s.id,
            prompt=tr(
                locale,
                N_("Which street or landmark in {place}?"),
                place=str(pick.pending.get("place", "")),
            ),
            kind=InputKind.LOCATION,
            # A hint of its own: a channel without pins (USSD) leaves it out.
            hint=tr(locale, N_("You can also send a location pin.")),
            optional=not s.required,
        )
    options = tuple(OptionView(id=f"pick:{i}", label=name) for i, name in enumerate(pick.names, 1))
    none = OptionView(id="pick:none", label=tr(locale, N_("None of these")))
    return Ask(
        step_id=s.id,
        prompt=tr(locale, N_("Which place do you mean?")),
        kind=InputKind.CHOICE,
        options=(*options, none),
        hint=None,
        optional=not s.required,
    )


def _review_steps(form: Form, state: FormState) -> list[Step]:
    answers = state["answers"]
    return [s for s in applicable_steps(form, state) if s.id in answers]


def _review(form: Form, state: FormState) -> Review:
    locale = state["locale"]
    items = tuple(
        ReviewItem(
            number=n,
            step_id=s.id,
            label=tr(locale, s.label or s.prompt),
            value=answer_kinds.display(s, state["answers"][s.id], locale),
        )
        for n, s in enumerate(_review_steps(form, state), 1)
    )
    words = NAVIGATION_WORDS.get(locale, NAVIGATION_WORDS["en"])
    prompt = tr(
        locale,
        N_("Reply {send} to send your report, or {change} and a number to change an answer."),
        send=words["send"].upper(),
        change=words["change"].upper(),
    )
    options = (
        OptionView(id="send", label=tr(locale, N_("Send"))),
        *(
            OptionView(
                id=f"change:{i.number}", label=tr(locale, N_("Change {number}"), number=i.number)
            )
            for i in items
        ),
    )
    return Review(
        title=tr(locale, N_("Check your answers: {title}"), title=tr(locale, form.title)),
        items=items,
        prompt=prompt,
        options=options,
    )
