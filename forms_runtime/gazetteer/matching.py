"""Matching what a resident typed to the places of a gazetteer.

The search is a cascade, cheapest and surest first; the first step that finds something decides:

1. the whole text is a known name, alias or spelling variant (a dict look-up);
2. the text names a town or suburb at its end or start ("Silvertown Khayelitsha", "..., Gugulethu"):
   the rest is matched among that town's places only, and failing that the town itself is the
   answer (the engine keeps the full text as the address);
3. the whole text, fuzzily (rapidfuzz over every folded name, with a score cut-off);
4. a window of 1 to 4 words inside the text is a known name;
5. a window of 1 or 2 distinctive words, fuzzily, with a stricter cut-off.

Close scores give candidates for the resident to choose from; generic words ("the road") never
match on their own.

Example::

    index = PlaceIndex(places, aliases, parts)
    index.match("mitchels plain").best.name  # "Mitchells Plain"
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

from rapidfuzz import fuzz, process

from forms_runtime.gazetteer.folding import compact, fold
from forms_runtime.gazetteer.places import Place, PlaceMatch

__all__ = ["PlaceIndex"]

# Fuzzy scores are 0..100. A whole-text match needs _CUTOFF; a window inside longer text needs
# more, because a longer text offers more chances of a chance resemblance.
_CUTOFF = 85.0
_WINDOW_CUTOFF = 90.0
_TOWN_CUTOFF = 88.0
# A place wins outright when no other place scores within this of it.
_MARGIN = 5.0
# Candidates offered: those within this of the top score.
_CANDIDATE_BAND = 12.0
# A part of a combined name ("Enkanini" of "Zwelitsha / Enkanini") scores this much of a name,
# and the first words of a longer name ("joe slovo" of "Joe Slovo Park Infills") this much.
_PART_WEIGHT = 0.95
_PREFIX_WEIGHT = 0.9
# Residents' place text beyond this is an address; the place name is in its first words.
_MAX_WORDS = 24
_MAX_CHARS = 300
_MAX_WINDOW = 4

# Words that say what kind of place or where, not which one: never a match on their own.
_GENERIC_WORDS = """a an the of and at in on near next to by from opposite behind cnr cor corner
    street st road rd avenue ave drive dr lane ln crescent cres close way circle
    park section site village estate farm farms informal settlement settlements infill infills
    house home number no block flat unit ext extension north south east west central new old
    my our we i is it there here area place hill hills valley square sq centre center city town
    outside inside front back between
    mall shop school church clinic hospital taxi rank station bus stop river bay beach
    """
_GENERIC = frozenset(_GENERIC_WORDS.split())


def _distinctive_word(word: str) -> bool:
    return len(word) >= 3 and word not in _GENERIC and not word.isdigit()


class PlaceIndex:
    """Names, aliases and parts of names, folded and ready to match."""

    def __init__(
        self,
        places: Sequence[Place],
        aliases: Sequence[Iterable[str]],
        parts: Sequence[Iterable[str]],
    ) -> None:
        self._places = tuple(places)
        # Exact look-ups by compact key: name and alias score 100, a part _PART_WEIGHT * 100.
        exact: dict[str, dict[int, float]] = defaultdict(dict)
        # Fuzzy choices: words sorted (so plain ratio is token_sort_ratio), then by length, so
        # a query is compared only with names long or short enough to reach the cut-off.
        choices: dict[str, dict[int, float]] = defaultdict(dict)
        for i, place in enumerate(self._places):
            names = {fold(place.name), *aliases[i]}
            weighted = [(n, 1.0) for n in names] + [(p, _PART_WEIGHT) for p in parts[i]]
            for name, weight in weighted:
                table = exact[compact(name)]
                table[i] = max(table.get(i, 0.0), weight)
                for prefix, prefix_weight in _prefixes(name):
                    table = choices[_sorted_words(prefix)]
                    table[i] = max(table.get(i, 0.0), weight * prefix_weight)
        self._exact = dict(exact)
        self._choices = sorted(choices, key=lambda c: (len(c), c))
        self._lengths = [len(c) for c in self._choices]
        self._choice_owners = [choices[c] for c in self._choices]
        # Towns residents add to a place name: every place's town, and the places named so.
        self._town_of = [compact(fold(p.town)) if p.town else "" for p in self._places]
        by_key = {compact(fold(p.name)): i for i, p in enumerate(self._places)}
        town_keys = {t for t in self._town_of if t}
        self._town_place = {key: by_key.get(key) for key in town_keys}
        self._town_names = {
            fold(self._places[i].name): key for key, i in by_key.items() if key in town_keys
        }
        self._town_choices = list(self._town_names)
        self._in_town: dict[str, list[int]] = defaultdict(list)
        for i, key in enumerate(self._town_of):
            if key:
                self._in_town[key].append(i)

    def match(self, text: str, limit: int = 3) -> PlaceMatch:
        words = fold(text[:_MAX_CHARS]).split()[:_MAX_WORDS]
        if not words or (
            not any(_distinctive_word(w) for w in words)
            and compact(" ".join(words)) not in self._exact
        ):
            return PlaceMatch(None)
        limit = max(1, limit)
        whole = " ".join(words)

        hits = self._exact_scores(compact(whole))
        if hits:
            return self._decide(hits, limit)

        town_match = self._match_with_town(words, limit)
        if town_match is not None:
            return town_match

        scores = self._fuzzy(whole, _CUTOFF)
        if scores:
            return self._decide(scores, limit)

        scores = self._exact_windows(words, None)
        if scores:
            return self._decide(scores, limit)

        scores = {}
        for window in self._windows(words, 2):
            if window == whole:
                # Whole-text fuzzy matching found nothing at _CUTOFF, so nothing reaches the
                # stricter _WINDOW_CUTOFF either: one- and two-word texts skip a second search.
                continue
            for i, score in self._fuzzy(window, _WINDOW_CUTOFF).items():
                scores[i] = max(scores.get(i, 0.0), score)
        return self._decide(scores, limit) if scores else PlaceMatch(None)

    # -- the steps ---------------------------------------------------------------------------

    def _match_with_town(self, words: list[str], limit: int) -> PlaceMatch | None:
        """Step 2: a town at the end (or start) of the text narrows the search to its places."""
        for rest, town in self._town_mentions(words):
            allowed = set(self._in_town[town])
            hits = self._exact_scores(compact(" ".join(rest)))
            scores = {i: s for i, s in hits.items() if i in allowed}
            if not scores and any(_distinctive_word(w) for w in rest):
                fuzzy = self._fuzzy(" ".join(rest), _CUTOFF)
                scores = {i: s for i, s in fuzzy.items() if i in allowed}
            if not scores:
                scores = self._exact_windows(rest, allowed)
            if scores:
                return self._decide(scores, limit)
            place = self._town_place.get(town)
            if place is not None:
                return PlaceMatch(self._places[place])
        return None

    def _town_mentions(self, words: list[str]) -> Iterable[tuple[list[str], str]]:
        """(the other words, town key) for a town named by the last or first 1-3 words."""
        for n in (3, 2, 1):
            if len(words) <= n:
                continue
            for town_words, rest in ((words[-n:], words[:-n]), (words[:n], words[n:])):
                town = self._town_key(town_words)
                if town is not None:
                    yield rest, town

    def _town_key(self, words: list[str]) -> str | None:
        key = compact(" ".join(words))
        if key in self._town_place:
            return key
        if len(key) < 5:  # short words resemble too many towns
            return None
        found = process.extractOne(
            " ".join(words), self._town_choices, scorer=fuzz.ratio, score_cutoff=_TOWN_CUTOFF
        )
        return self._town_names[found[0]] if found else None

    def _exact_scores(self, key: str) -> dict[int, float]:
        return {i: weight * 100 for i, weight in self._exact.get(key, {}).items()}

    def _fuzzy(self, query: str, cutoff: float) -> dict[int, float]:
        """Places whose folded names resemble ``query`` (any word order), scored 0..100."""
        query = _sorted_words(query)
        # ratio = 2 * matches / (len(a) + len(b)) >= cutoff bounds the other string's length.
        share = cutoff / 100
        low = bisect.bisect_left(self._lengths, math.ceil(len(query) * share / (2 - share)))
        high = bisect.bisect_right(self._lengths, math.floor(len(query) * (2 - share) / share))
        scores: dict[int, float] = {}
        for _, score, at in process.extract(
            query, self._choices[low:high], scorer=fuzz.ratio, score_cutoff=cutoff, limit=None
        ):
            for i, weight in self._choice_owners[low + at].items():
                if score * weight >= cutoff:
                    scores[i] = max(scores.get(i, 0.0), score * weight)
        return scores

    def _exact_windows(self, words: list[str], allowed: set[int] | None) -> dict[int, float]:
        """Step 4: the longest windows of words that are a known name."""
        for n in range(min(_MAX_WINDOW, len(words)), 0, -1):
            scores: dict[int, float] = {}
            for start in range(len(words) - n + 1):
                window = words[start : start + n]
                if not any(_distinctive_word(w) for w in window):
                    continue
                for i, score in self._exact_scores(compact(" ".join(window))).items():
                    if allowed is None or i in allowed:
                        scores[i] = max(scores.get(i, 0.0), score)
            if scores:
                return scores
        return {}

    @staticmethod
    def _windows(words: list[str], longest: int) -> Iterable[str]:
        for n in range(min(longest, len(words)), 0, -1):
            for start in range(len(words) - n + 1):
                window = words[start : start + n]
                if all(_distinctive_word(w) and len(w) >= 4 for w in window):
                    yield " ".join(window)

    def _decide(self, scores: dict[int, float], limit: int) -> PlaceMatch:
        ranked = sorted(scores, key=lambda i: (-scores[i], self._places[i].name))
        top = scores[ranked[0]]
        if len(ranked) == 1 or scores[ranked[1]] <= top - _MARGIN:
            return PlaceMatch(self._places[ranked[0]])
        close = [i for i in ranked if scores[i] >= top - _CANDIDATE_BAND][:limit]
        return PlaceMatch(None, tuple(self._places[i] for i in close))


def _sorted_words(name: str) -> str:
    return " ".join(sorted(name.split()))


def _prefixes(name: str) -> list[tuple[str, float]]:
    """The name itself, and its first two or more words where they are distinctive enough to
    stand alone: "joe slovo park infills" -> "joe slovo park", "joe slovo". One word is never
    enough ("table" of "Table View" is too often just a table)."""
    words = name.split()
    out = [(name, 1.0)]
    for n in range(len(words) - 1, 1, -1):
        head = words[:n]
        if sum(len(w) for w in head) >= 5 and any(_distinctive_word(w) for w in head):
            out.append((" ".join(head), _PREFIX_WEIGHT))
    return out
