"""The service picker: a resident's own words -> the forms they probably mean.

"there's water pouring out of the road" has no form's title in it, but it shares words with the
water leak form's keywords ("water in the street", "water running"). Every form is scored by its
keywords in every locale and its title (English and the resident's locale), word by word with
rapidfuzz so typos still count; the best few are offered as a short choice. A clear miss offers
the menu and the general enquiry form. Pure: no I/O, so it is fast and easy to test.

Example::

    picker = ServicePicker(standard_forms())
    picker.match("there's water pouring out of the road")[0].form.id   # 'water_leak'
    picker.offer(picker.match("potole"), "en")   # Ask(step_id="service", options=(...))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

from rapidfuzz import fuzz, process

from forms_runtime.effects import Ask, InputKind, OptionView
from forms_runtime.i18n import N_, tr
from forms_runtime.model import Form
from forms_runtime.understanding.text import fold
from forms_runtime.understanding.yes_no import parse_yes_no

__all__ = ["GENERAL_FORM_ID", "MENU_OPTION", "PICKER_STEP", "Match", "ServicePicker"]

PICKER_STEP = "service"
MENU_OPTION = "menu"
GENERAL_FORM_ID = "general_enquiry"

# Words that carry no meaning for choosing a service, in the four locales.
_STOPWORD_TEXT = """
    a an the there theres is are was it its of in on at to from out into by for and or my our
    there's i we you me us this that there here please help with some very just still again
    die n 'n is in op by na van en of my ons daar hier asseblief
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
# Residents describe what they see ("water pouring out"); forms name the problem ("water
# running"). Words on the left count as the word on the right, in keywords and messages alike.
_SAME_MEANING = {
    "pouring": "running",
    "gushing": "running",
    "flowing": "running",
    "spraying": "running",
    "streaming": "running",
    "spurting": "running",
    "squirting": "running",
    "roads": "road",
}
# A word counts as the same word from this similarity on: "potole" is "pothole", but "nowater"
# is not "water".
_WORD_CUTOFF = 85
# A form is offered when its best score reaches this, and others within the margin join it.
_MATCH_CUTOFF = 50.0
_MARGIN = 15.0
_MAX_OFFERED = 3


@dataclass(frozen=True, slots=True)
class Match:
    form: Form
    score: float


@dataclass(frozen=True, slots=True)
class _Phrase:
    form_id: str
    words: tuple[str, ...]


def _words(text: str) -> tuple[str, ...]:
    return tuple(_SAME_MEANING.get(w, w) for w in fold(text).split() if w not in _STOPWORDS)


class ServicePicker:
    def __init__(self, forms: Mapping[str, Form]) -> None:
        self._forms = dict(forms)

    @property
    def forms(self) -> Mapping[str, Form]:
        return self._forms

    @cached_property
    def _phrases(self) -> tuple[_Phrase, ...]:
        phrases: list[_Phrase] = []
        for form in self._forms.values():
            texts = [form.title, form.id.replace("_", " ")]
            for keywords in form.keywords.values():
                texts.extend(keywords)
            for text in texts:
                words = _words(text)
                if words:
                    phrases.append(_Phrase(form.id, words))
        return tuple(phrases)

    def match(self, text: str, locale: str = "en") -> list[Match]:
        """The forms ``text`` probably means, best first; empty on a clear miss."""
        said = _words(text)
        if not said:
            return []
        best: dict[str, float] = {}
        extra = {form.id: _words(tr(locale, form.title)) for form in self._forms.values()}
        candidates = [*self._phrases, *(_Phrase(fid, w) for fid, w in extra.items() if w)]
        for phrase in candidates:
            score = _phrase_score(phrase.words, said)
            if score > best.get(phrase.form_id, 0.0):
                best[phrase.form_id] = score
        ranked = sorted(best.items(), key=lambda item: -item[1])
        if not ranked or ranked[0][1] < _MATCH_CUTOFF:
            return []
        top = ranked[0][1]
        return [
            Match(self._forms[form_id], score)
            for form_id, score in ranked[:_MAX_OFFERED]
            if score >= _MATCH_CUTOFF and score >= top - _MARGIN
        ]

    def choose(self, text: str | None, option_id: str | None, offered: Sequence[str]) -> str | None:
        """Which offered form (or ``menu``) a reply picks: a button, a number or a title."""
        choices = [*offered, MENU_OPTION]
        if option_id is not None:
            return option_id if option_id in choices else None
        if not text:
            return None
        folded = fold(text)
        if folded.isdigit():
            index = int(folded) - 1
            return choices[index] if 0 <= index < len(choices) else None
        if len(offered) == 1:
            # "Do you want to report this?" is a yes/no question, whatever the buttons say.
            agreed = parse_yes_no(text)
            if agreed is not None:
                return offered[0] if agreed else MENU_OPTION
        titles = {form_id: fold(self._forms[form_id].title) for form_id in offered}
        found = process.extractOne(folded, titles, scorer=fuzz.WRatio, score_cutoff=88)
        return str(found[2]) if found else None

    def offer(self, matches: Sequence[Match], locale: str) -> Ask:
        """A short choice of the matched forms, with the full menu as the last option."""
        options = [OptionView(m.form.id, tr(locale, m.form.title)) for m in matches]
        options.append(OptionView(MENU_OPTION, tr(locale, N_("Something else (see all)"))))
        if len(matches) == 1:
            prompt = tr(locale, N_("Do you want to report this?"))
        else:
            prompt = tr(locale, N_("Which of these do you want to report?"))
        return Ask(
            step_id=PICKER_STEP, prompt=prompt, kind=InputKind.CHOICE, options=tuple(options)
        )

    def menu(self, locale: str) -> Ask:
        """Every service, in menu order."""
        options = tuple(OptionView(f.id, tr(locale, f.title)) for f in self._forms.values())
        return Ask(
            step_id=PICKER_STEP,
            prompt=tr(locale, N_("What do you want to report? Choose a service.")),
            kind=InputKind.CHOICE,
            options=options,
        )

    def miss(self, locale: str) -> Ask:
        """Nothing matched: the general enquiry form, or the whole menu."""
        options: list[OptionView] = []
        general = self._forms.get(GENERAL_FORM_ID)
        if general is not None:
            options.append(OptionView(general.id, tr(locale, general.title)))
        options.append(OptionView(MENU_OPTION, tr(locale, N_("See all services"))))
        return Ask(
            step_id=PICKER_STEP,
            prompt=tr(
                locale,
                N_(
                    "I could not tell which service you need. Describe the problem in a few words, or choose:"
                ),
            ),
            kind=InputKind.CHOICE,
            options=tuple(options),
        )


def _phrase_score(phrase: tuple[str, ...], said: tuple[str, ...]) -> float:
    """How much of ``phrase`` the resident said (0-100), each word matched with typos allowed.

    Covering a whole phrase scores highest; longer phrases covered count a little more, because
    "burst pipe" says more than "pipe" alone.
    """
    total = 0.0
    for word in phrase:
        found = process.extractOne(word, said, scorer=fuzz.ratio, score_cutoff=_WORD_CUTOFF)
        if found is not None:
            total += found[1]
    coverage = total / len(phrase)
    return coverage + min(len(phrase) - 1, 3) * 5 * (coverage / 100)
