"""The service picker: a resident's own words -> the forms they probably mean.

"there's water pouring out of the road" has no form's title in it, but it shares words with the
water leak form's keywords ("water in the street", "water running"). Every form is scored by its
keywords in every locale and its title (English and the resident's locale), word by word with
rapidfuzz so typos still count; the best few are offered as a short choice. A clear miss offers
the menu and the general enquiry form. Pure: no I/O, so it is fast and easy to test.

Every phrase's words are known in advance, so each locale gets an index once: the distinct words
of all phrases, and which phrases each word is in. A message's few words are then compared with
that vocabulary in one rapidfuzz call per word (not one call per phrase word), and only the
phrases that share a word with the message are scored.

Example::

    picker = ServicePicker(standard_forms())
    picker.match("there's water pouring out of the road")[0].form.id   # 'water_leak'
    picker.offer(picker.match("potole"), "en")   # Ask(step_id="service", options=(...))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from forms_runtime.effects import Ask, InputKind, OptionView
from forms_runtime.i18n import LOCALES, N_, tr
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


@dataclass(frozen=True, slots=True)
class _Index:
    """The phrases of one locale, by word: what ``match`` compares a message with."""

    phrases: tuple[_Phrase, ...]
    vocabulary: tuple[str, ...]
    # For each phrase, the positions of its words in ``vocabulary``.
    positions: tuple[tuple[int, ...], ...]
    # For each vocabulary word, the phrases it is in.
    used_in: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, phrases: Sequence[_Phrase]) -> _Index:
        where: dict[str, int] = {}
        for phrase in phrases:
            for word in phrase.words:
                where.setdefault(word, len(where))
        positions = tuple(tuple(where[w] for w in phrase.words) for phrase in phrases)
        used_in: list[list[int]] = [[] for _ in where]
        for number, spots in enumerate(positions):
            for spot in set(spots):
                used_in[spot].append(number)
        return cls(tuple(phrases), tuple(where), positions, tuple(map(tuple, used_in)))


def _words(text: str) -> tuple[str, ...]:
    return tuple(_SAME_MEANING.get(w, w) for w in fold(text).split() if w not in _STOPWORDS)


class ServicePicker:
    def __init__(self, forms: Mapping[str, Form]) -> None:
        self._forms = dict(forms)
        self._indexes: dict[str, _Index] = {}
        base: list[_Phrase] = []
        for form in self._forms.values():
            texts = [form.title, form.id.replace("_", " ")]
            for keywords in form.keywords.values():
                texts.extend(keywords)
            base.extend(_Phrase(form.id, words) for words in map(_words, texts) if words)
        self._phrases = tuple(base)

    @property
    def forms(self) -> Mapping[str, Form]:
        return self._forms

    def _index(self, locale: str) -> _Index:
        """Every form's keywords in every locale, and its title in ``locale`` (built once)."""
        index = self._indexes.get(locale)
        if index is None:
            titles = (_Phrase(f.id, _words(tr(locale, f.title))) for f in self._forms.values())
            index = _Index.of([*self._phrases, *(p for p in titles if p.words)])
            if locale in LOCALES:  # anything else is built again: no unbounded cache
                self._indexes[locale] = index
        return index

    def match(self, text: str, locale: str = "en") -> list[Match]:
        """The forms ``text`` probably means, best first; empty on a clear miss."""
        said = _words(text)
        if not said:
            return []
        index = self._index(locale)
        # How closely the resident said each vocabulary word (0 when not close enough).
        heard: dict[int, float] = {}
        for word in set(said):
            for _, score, spot in process.extract(
                word, index.vocabulary, scorer=fuzz.ratio, score_cutoff=_WORD_CUTOFF, limit=None
            ):
                if score > heard.get(spot, 0.0):
                    heard[spot] = score
        candidates = sorted({number for spot in heard for number in index.used_in[spot]})
        best: dict[str, float] = {}
        for number in candidates:
            phrase = index.phrases[number]
            score = _phrase_score(index.positions[number], heard)
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
        if folded.isdecimal():  # isdigit() also takes "፩", which int() refuses
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


def _phrase_score(positions: tuple[int, ...], heard: Mapping[int, float]) -> float:
    """How much of a phrase the resident said (0-100), each word matched with typos allowed.

    Covering a whole phrase scores highest; longer phrases covered count a little more, because
    "burst pipe" says more than "pipe" alone.
    """
    coverage = sum(heard.get(spot, 0.0) for spot in positions) / len(positions)
    return coverage + min(len(positions) - 1, 3) * 5 * (coverage / 100)
