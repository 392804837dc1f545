"""Picking options: by number ("2", "(2)", "option 2"), by label in any locale, with typos.

Each option carries its label in every locale plus synonyms. A message is matched word by word
against those labels: exact words, prefixes ("big" for "bigger"), words inside a label word
("hole" in "pothole") and typos ("potole", "slagat") all count. Two close candidates make the
answer ambiguous, so the resident is asked to pick; nothing close is no match.

The options of a step are compiled once (vocabulary, prefixes, exact labels) and cached by the
tuple the engine passes, so a match costs a few dictionary look-ups and one rapidfuzz scan.

Example::

    options = (ChoiceOption("pothole", ("Pothole", "Slaggat")),
               ChoiceOption("leak", ("Water leak", "Waterlek")))
    match_choice("potole", options)    # ChoiceMatch(option_id='pothole')
    match_choice("2", options)         # ChoiceMatch(option_id='leak')
    match_choices("1 and waterlek", options)   # (('pothole', 'leak'), ())
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

from forms_runtime.understanding.numbers import NUMBER_WORDS
from forms_runtime.understanding.text import clean_text, fold

__all__ = [
    "ChoiceMatch",
    "ChoiceOption",
    "CompiledOptions",
    "compile_options",
    "match_choice",
    "match_choices",
]


@dataclass(frozen=True, slots=True)
class ChoiceOption:
    """One option: ``labels`` holds its label in every locale plus synonyms; ``labels[0]`` is shown."""

    id: str
    labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ChoiceMatch:
    """The option picked, or none; ``candidates`` lists the close options when it is unclear."""

    option_id: str | None
    candidates: tuple[str, ...] = ()


# A word score at or above this is a match; options this close to the best are ambiguous.
_MATCH = 80.0
_CLOSE = 10.0
# Below a match but this good: offered as a "did you mean" candidate.
_WEAK = 70.0
_PREFIX_SCORE = 90.0
_WHOLE = 88.0
_INSIDE_SCORE = 85.0
_MAX_QUERY_WORDS = 8

# Words that say nothing about which option is meant.
_STOPWORDS = frozenset(
    {
        "a", "an", "the", "of", "or", "and", "is", "it", "its", "my", "to", "than", "then", "on",
        "in", "at", "i", "me", "this", "that", "there", "with", "for", "be", "am", "are", "was",
        "die", "n", "van", "en", "dit", "op", "by", "na", "met", "vir", "ek",
        "option", "opsie", "number", "nommer", "no", "nr", "inombolo",
    }
)  # fmt: skip
# "no" is a stopword only in front of a number ("no. 2"); on its own it can be a label word.
_LABEL_STOPWORDS = _STOPWORDS - {"no", "number", "option", "opsie", "nommer", "nr", "inombolo"}

_NUMBERED = re.compile(r"^(?:(?:option|opsie|nommer|number|no|nr|num|inombolo|choice|keuse)\s)?(\d{1,3})$")  # fmt: skip
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "eerste": 1, "tweede": 2, "derde": 3, "vierde": 4, "vyfde": 5,
    "sesde": 6, "sewende": 7, "agtste": 8, "negende": 9,
}  # fmt: skip
# Between the parts of a multi-choice answer: punctuation first, then "and" in each locale.
_PUNCTUATION_SPLIT = re.compile(r"[,;/&+\n|]+")
_WORD_SPLIT = re.compile(r"\s+(?:and|en|futhi|kwaye|plus|asook)\s+")
_DIGITS_ONLY = re.compile(r"^\d+(?: \d+)*$")
_MAX_PARTS = 20


@dataclass(frozen=True, slots=True)
class CompiledOptions:
    """Options prepared for matching; build with ``compile_options``."""

    options: tuple[ChoiceOption, ...]
    ids: tuple[str, ...]
    # Folded label (also without stopwords) -> indices of the options that have it.
    exact: dict[str, tuple[int, ...]]
    # Every content word of every label, once.
    vocab: tuple[str, ...]
    vocab_index: dict[str, int]
    # Prefix of a vocabulary word (3 letters or more) -> vocabulary indices.
    prefixes: dict[str, tuple[int, ...]]
    # Per option, per label: the vocabulary indices of its content words.
    label_words: tuple[tuple[tuple[int, ...], ...], ...]
    # Per vocabulary word: the (option, label) positions that contain it.
    vocab_labels: tuple[tuple[tuple[int, int], ...], ...]
    # The folded labels as one list, for a whole-answer typo check ("about a car tire").
    exact_keys: tuple[str, ...] = ()
    # Answers already understood (folded text -> match): residents repeat the same few.
    memo: dict[str, ChoiceMatch] = field(default_factory=dict, compare=False, hash=False)


def _content_words(folded: str, stopwords: frozenset[str]) -> list[str]:
    words = [w for w in folded.split() if w not in stopwords]
    return list(dict.fromkeys(words))


def _compile(options: tuple[ChoiceOption, ...]) -> CompiledOptions:
    exact: dict[str, list[int]] = {}
    vocab_index: dict[str, int] = {}
    prefixes: dict[str, list[int]] = {}
    label_words: list[tuple[tuple[int, ...], ...]] = []
    for index, option in enumerate(options):
        per_label: list[tuple[int, ...]] = []
        for label in (*option.labels, option.id.replace("_", " ")):
            folded = fold(label)
            if not folded:
                continue
            words = _content_words(folded, _LABEL_STOPWORDS)
            for key in (folded, " ".join(words), folded.replace(" ", "")):
                if key and index not in exact.setdefault(key, []):
                    exact[key].append(index)
            indices: list[int] = []
            for word in words:
                if word not in vocab_index:
                    vocab_index[word] = len(vocab_index)
                    for end in range(3, len(word)):
                        prefixes.setdefault(word[:end], []).append(vocab_index[word])
                indices.append(vocab_index[word])
            if indices:
                per_label.append(tuple(indices))
        label_words.append(tuple(per_label))
    vocab_labels: list[list[tuple[int, int]]] = [[] for _ in vocab_index]
    for option_at, labels in enumerate(label_words):
        for label_at, label_vocab in enumerate(labels):
            for vocab_at in dict.fromkeys(label_vocab):
                vocab_labels[vocab_at].append((option_at, label_at))
    return CompiledOptions(
        options=options,
        ids=tuple(option.id for option in options),
        exact={key: tuple(value) for key, value in exact.items()},
        exact_keys=tuple(exact),
        vocab=tuple(vocab_index),
        vocab_index=vocab_index,
        prefixes={key: tuple(value) for key, value in prefixes.items()},
        label_words=tuple(label_words),
        vocab_labels=tuple(tuple(places) for places in vocab_labels),
    )


# The engine passes the same tuple for a step on every turn: look it up by identity first,
# then by value. Both caches are bounded; a city has a few hundred option lists at most.
_BY_IDENTITY: dict[int, CompiledOptions] = {}
_BY_VALUE: dict[tuple[ChoiceOption, ...], CompiledOptions] = {}
_CACHE_LIMIT = 2048


def compile_options(options: Sequence[ChoiceOption]) -> CompiledOptions:
    """Prepare options for matching, cached: calling it again with the same options is cheap.

    Example::

        compiled = compile_options(options)
        match_choice("2", compiled.options)
    """
    cached = _BY_IDENTITY.get(id(options))
    if cached is not None and cached.options is options:
        return cached
    key = options if isinstance(options, tuple) else tuple(options)
    compiled = _BY_VALUE.get(key)
    if compiled is None:
        if len(_BY_VALUE) >= _CACHE_LIMIT:
            _BY_VALUE.clear()
        compiled = _compile(key)
        _BY_VALUE[key] = compiled
    if isinstance(options, tuple) and compiled.options is options:
        if len(_BY_IDENTITY) >= _CACHE_LIMIT:
            _BY_IDENTITY.clear()
        # Safe against id reuse: the entry is trusted only while it holds this very tuple.
        _BY_IDENTITY[id(options)] = compiled
    return compiled


def _word_scores(word: str, compiled: CompiledOptions) -> dict[int, float]:
    """How well one query word matches each vocabulary word (only the ones that match)."""
    scores: dict[int, float] = {}
    exact = compiled.vocab_index.get(word)
    if exact is not None:
        scores[exact] = 100.0
    if len(word) >= 3:
        for index in compiled.prefixes.get(word, ()):
            scores.setdefault(index, _PREFIX_SCORE)
    if len(word) >= 4:
        # "hole" in "pothole"; "lights" in "streetlight" (an English plural s dropped).
        stem = word[:-1] if len(word) >= 5 and word[-1] == "s" else word
        for index, vocab_word in enumerate(compiled.vocab):
            if stem in vocab_word and index not in scores:
                scores[index] = _INSIDE_SCORE
        for _, score, index in process.extract(
            word, compiled.vocab, scorer=fuzz.ratio, score_cutoff=_MATCH, limit=None
        ):
            if score > scores.get(index, 0.0):
                scores[index] = score
    return scores


def _option_scores(folded: str, compiled: CompiledOptions) -> list[float]:
    totals = [0.0] * len(compiled.options)
    words = _content_words(folded, _STOPWORDS)[:_MAX_QUERY_WORDS]
    if not words:
        return totals
    per_word = [_word_scores(word, compiled) for word in words]
    # Only labels sharing a matched word can score; visit just those.
    touched: dict[tuple[int, int], None] = {}
    for scores in per_word:
        for vocab in scores:
            for place in compiled.vocab_labels[vocab]:
                touched[place] = None
    # A whole answer one or two letters away from a whole label is that label, even when the
    # misspelt word alone is too short to match ("tire" for "tyre").
    if len(folded) >= 6:
        for key, score, _ in process.extract(
            folded, compiled.exact_keys, scorer=fuzz.ratio, score_cutoff=_WHOLE, limit=None
        ):
            for option in compiled.exact[key]:
                totals[option] = max(totals[option], score)
    for option, label_at in touched:
        label = compiled.label_words[option][label_at]
        # How much of the answer the label explains, and how much of the label the answer
        # covers: "hole" fits "Pothole", and "pothole near the school" fits it too.
        answer_side = 0.0
        for scores in per_word:
            answer_side += max([scores.get(vocab, 0.0) for vocab in label])
        label_side = 0.0
        for vocab in label:
            label_side += max([scores.get(vocab, 0.0) for scores in per_word])
        score = max(answer_side / len(per_word), label_side / len(label))
        if score > totals[option]:
            totals[option] = score
    return totals


def _by_number(folded: str, compiled: CompiledOptions) -> int | None:
    """The 0-based option a number answer picks, -1 for a number out of range, else None."""
    match = _NUMBERED.match(folded)
    if match is not None:
        number = int(match.group(1))
    else:
        spelled = NUMBER_WORDS.get(folded)
        if spelled is None:
            spelled = _ORDINALS.get(folded)
        if spelled is None:
            words = folded.split(" ", 1)
            if len(words) == 2 and words[0] in _STOPWORDS:
                spelled = NUMBER_WORDS.get(words[1])
        if spelled is None:
            return None
        number = spelled
    return number - 1 if 1 <= number <= len(compiled.options) else -1


_MEMO_LIMIT = 512


def _match_folded(folded: str, compiled: CompiledOptions) -> ChoiceMatch:
    found = compiled.memo.get(folded)
    if found is None:
        found = _understand(folded, compiled)
        if len(compiled.memo) >= _MEMO_LIMIT:
            compiled.memo.clear()
        compiled.memo[folded] = found
    return found


def _understand(folded: str, compiled: CompiledOptions) -> ChoiceMatch:
    if not folded:
        return ChoiceMatch(None)
    exact = compiled.exact.get(folded)
    if exact is not None:
        if len(exact) == 1:
            return ChoiceMatch(compiled.ids[exact[0]])
        return ChoiceMatch(None, tuple(compiled.ids[i] for i in exact))
    numbered = _by_number(folded, compiled)
    if numbered is not None:
        return ChoiceMatch(compiled.ids[numbered] if numbered >= 0 else None)
    scores = _option_scores(folded, compiled)
    best = max(scores, default=0.0)
    if best < _WEAK:
        return ChoiceMatch(None)
    close = [i for i, score in enumerate(scores) if score >= _WEAK and best - score < _CLOSE]
    if best >= _MATCH and len(close) == 1:
        return ChoiceMatch(compiled.ids[close[0]])
    close.sort(key=lambda i: -scores[i])
    return ChoiceMatch(None, tuple(compiled.ids[i] for i in close[:4]))


def match_choice(text: str, options: Sequence[ChoiceOption]) -> ChoiceMatch:
    """Which option a free-text answer picks.

    A number picks by position (1-based); a label in any locale, a word of a label, or a near
    spelling picks by label. Several close options give ``candidates`` and no ``option_id``.

    Example::

        match_choice("slagat", options)   # ChoiceMatch(option_id='pothole')
    """
    compiled = compile_options(options)
    return _match_folded(fold(clean_text(text, 200)), compiled)


def _numbers(folded: str, compiled: CompiledOptions) -> tuple[list[int], list[str]]:
    """Options picked by a run of numbers: "1 3", and "13" as 1 and 3 when there are < 10."""
    picked: list[int] = []
    unknown: list[str] = []
    count = len(compiled.options)
    for token in folded.split():
        if len(token) > 3 and count >= 10:
            unknown.append(token)
        elif len(token) == 1 or count >= 10:
            number = int(token)
            if 1 <= number <= count:
                picked.append(number - 1)
            else:
                unknown.append(token)
        elif all("1" <= digit <= str(count) for digit in token):
            picked.extend(int(digit) - 1 for digit in token)
        else:
            unknown.append(token)
    return picked, unknown


def match_choices(
    text: str, options: Sequence[ChoiceOption]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Several options from one answer: "1, 3", "1 and 3", "13", "water, lights", "1 en 3".

    Returns the option ids in option order, and the parts of the answer that matched nothing
    (or matched ambiguously), so the resident can be told which part to fix.

    Example::

        match_choices("1 and waterlek, banana", options)   # (('pothole', 'leak'), ('banana',))
    """
    compiled = compile_options(options)
    cleaned = clean_text(text, 1000)
    picked: set[int] = set()
    unknown: list[str] = []
    # A label that itself contains "and" or a comma ("Sand, stones and rubble") is one option.
    whole = compiled.exact.get(fold(cleaned))
    if whole is not None and len(whole) == 1:
        return (compiled.ids[whole[0]],), ()
    parts_seen = 0
    for chunk in _PUNCTUATION_SPLIT.split(cleaned.casefold()):
        folded_chunk = fold(chunk)
        if not folded_chunk:
            continue
        parts_seen += 1
        if parts_seen > _MAX_PARTS:
            # Nobody picks more than a few options; past that, spend no more time on it.
            unknown.append(folded_chunk)
            continue
        exact = compiled.exact.get(folded_chunk)
        if exact is not None and len(exact) == 1:
            picked.add(exact[0])
            continue
        for part in _WORD_SPLIT.split(f" {folded_chunk} "):
            part = part.strip()
            if not part:
                continue
            if _DIGITS_ONLY.match(part):
                numbers, bad = _numbers(part, compiled)
                picked.update(numbers)
                unknown.extend(bad)
                continue
            match = _match_folded(part, compiled)
            if match.option_id is not None:
                picked.add(compiled.ids.index(match.option_id))
                continue
            # "water lights": every word an option of its own.
            words = part.split()
            singles = [_match_folded(w, compiled).option_id for w in words[:_MAX_PARTS]]
            if 1 < len(words) <= _MAX_PARTS and all(singles):
                picked.update(compiled.ids.index(s) for s in singles if s is not None)
            else:
                unknown.append(part)
    return tuple(compiled.ids[i] for i in sorted(picked)), tuple(unknown)
