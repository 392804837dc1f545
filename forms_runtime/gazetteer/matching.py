"""Matching what a resident typed to the places of a gazetteer.

Residents type a place the way they say it: with a typo in every word ("Hoit Bay Heighst"),
inside a sentence ("next to the clinic in Tafelsig"), with its town ("Makhaza, Khayelitsha"),
or only a part of its name ("Makhaza" for "Makhaza Informal" and "Msindweni Makhaza"). The
search is a cascade, cheapest and surest first; the first step that finds something decides:

1. the whole text is a known name, alias or spelling variant (a dict look-up, spaces ignored);
2. word by word: each word of the text is looked up among the words of every name, exactly or
   with one slip (a letter dropped, added, changed, or two swapped; found through a table of
   one-letter deletions, so no name is compared that cannot be that close). A place is
   *complete* when the words found cover its name (weighted: "Park" or "1" count little, a rare
   word much); its town named beside it adds to it ("Green Point Khayelitsha"), the city's own
   name hardly ("Woodstock, Cape Town"). The place that explains most of the text wins; a place
   explaining only words another explains too gives way ("Philippi Park" over "Philippi").
   Places only partly named ("Makhaza") are offered as candidates, never as the answer: beside
   a complete place that explains less of the text ("Slovo Langa" offers Joe Slovo Langa
   beside Langa), or alone on strong evidence (one word that merely resembles a place, "gutter"
   for "Butter 50", offers nothing). A name made only of kind words ("NT Section") must be
   typed whole;
3. the whole text, fuzzily (rapidfuzz over every folded name, with a score cut-off), for slips
   the word step cannot see ("Phillipi" for "Philippi": two letters changed);
4. a window of 1 or 2 distinctive words, fuzzily, with a stricter cut-off.

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
from dataclasses import dataclass

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from forms_runtime.gazetteer.folding import compact, fold
from forms_runtime.gazetteer.places import Place, PlaceMatch

__all__ = ["PlaceIndex"]

# Fuzzy scores are 0..100. A whole-text match needs _CUTOFF; a window inside longer text needs
# more, because a longer text offers more chances of a chance resemblance.
_CUTOFF = 85.0
_WINDOW_CUTOFF = 90.0
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

# The word step. A word found with one slip counts at most this much of an exact one (times
# the closeness of the two spellings); words under _MIN_SLIP letters must be exact.
_SLIP = 0.9
_MIN_SLIP = 4
# Words that say what kind of place (or what number) count this much, whatever their rarity.
_KIND_WEIGHT = 0.25
# A place is complete when the words found make up this share of its name's weight...
_COMPLETE = 0.75
# ...and offered (as a candidate only) when they make up this share, a rare word among them.
_PARTIAL = 0.3
# A distinctive word typed exactly is enough to offer a partly named place at this length, one
# with a slip at the next; a shorter one when it makes up this share of the name.
_MIN_PROPER = 5
_MIN_SLIPPED = 7
_HALF = 0.5
# Complete places explaining within this many words of the best one are close enough to offer
# together (a word found exactly is worth 1, a slip its closeness, a kind word a quarter).
_CLOSE = 0.04

# What the city's own name is worth in a text: it says which city, hardly which place.
_CITY_WORTH = 0.1

# Words that say what kind of place or where, not which one: never a match on their own.
_GENERIC_WORDS = """a an the of and at in on near next to by from opposite behind cnr cor corner
    street st road rd avenue ave drive dr lane ln crescent cres close way circle
    park section site village estate farm farms informal settlement settlements infill infills
    house home number no block flat unit ext extension north south east west central new old
    my our we i is it there here area place hill hills valley square sq centre center city town
    outside inside front back between heights gardens garden industrial industria view
    mall shop shops school church clinic hospital taxi rank station bus stop river bay beach
    camp tra
    """
# Words of residents' sentences that also occur in place names ("Big Bay", "Sweet Home"): they
# count as kind words, so that a sentence made of them names nothing.
_SENTENCE_WORDS = """big small main live stay staying sweet home water pothole hole lights light
    please help there their this that with for are was here near just our your
    table drop places street select from where hello thanks morning good
    out the and for not but one two can get see now way day man old all any has had her his him
    how its may off own put say she too use who why yes you got let lot bad far few low hot top
    red car dog cat sun ago tree gate know dont door wall pipe pole wire bridge hall down up
    field fields houses night light lights meter drain
    """
_GENERIC = frozenset(_GENERIC_WORDS.split())
_WEAK = _GENERIC | frozenset(_SENTENCE_WORDS.split())


def _distinctive_word(word: str) -> bool:
    return len(word) >= 3 and word not in _GENERIC and not word.isdigit()


def _weak(word: str) -> bool:
    return len(word) < 3 or word in _WEAK or not word.isalpha()


@dataclass(frozen=True, slots=True)
class _Variant:
    """One way of naming a place: its name, an alias, or a part of a combined name."""

    place: int
    words: tuple[str, ...]
    weight: float  # 1 for a name or alias, _PART_WEIGHT for a part


@dataclass(frozen=True, slots=True)
class _Sighting:
    """A known word seen in the text."""

    sure: float  # 1 typed exactly; less for a slip
    worth: float  # what explaining the typed word is worth (sure, times less for a kind word)
    where: frozenset[int]  # the positions of the typed word (two for "du noon")
    # Enough alone to offer a place only partly named: typed exactly with _MIN_PROPER letters,
    # or with a slip where the typed or the known word has _MIN_SLIPPED.
    strong: bool = False


@dataclass(slots=True)
class _Found:
    """How well the words of a text explain one place."""

    place: int
    coverage: float  # share of the name's weight found (0..1)
    mass: float  # weight of the text explained, the town's words included
    positions: frozenset[int]  # which words of the text
    whole: bool  # every word of the name was found
    # Enough to offer the place when only part of its name was found: a strong sighting of a
    # distinctive word, two distinctive words, or half its name ("tree", or a slip of "know",
    # alone is an English word, not "Fig Tree Estate" or "Faerie Knowe").
    offerable: bool = False


class PlaceIndex:
    """Names, aliases and parts of names, folded and ready to match."""

    def __init__(
        self,
        places: Sequence[Place],
        aliases: Sequence[Iterable[str]],
        parts: Sequence[Iterable[str]],
        city: str | None = None,
    ) -> None:
        self._places = tuple(places)
        # Exact look-ups by compact key: name and alias score 100, a part _PART_WEIGHT * 100.
        exact: dict[str, dict[int, float]] = defaultdict(dict)
        # Fuzzy choices: words sorted (so plain ratio is token_sort_ratio), then by length, so
        # a query is compared only with names long or short enough to reach the cut-off.
        choices: dict[str, dict[int, float]] = defaultdict(dict)
        variants: list[_Variant] = []
        for i, place in enumerate(self._places):
            names = {fold(place.name), *aliases[i]}
            weighted = [(n, 1.0) for n in names] + [(p, _PART_WEIGHT) for p in parts[i]]
            for name, weight in weighted:
                table = exact[compact(name)]
                table[i] = max(table.get(i, 0.0), weight)
                for prefix, prefix_weight in _prefixes(name):
                    table = choices[_sorted_words(prefix)]
                    table[i] = max(table.get(i, 0.0), weight * prefix_weight)
                if name.split():
                    variants.append(_Variant(i, tuple(name.split()), weight))
        self._exact = dict(exact)
        self._choices = sorted(choices, key=lambda c: (len(c), c))
        self._lengths = [len(c) for c in self._choices]
        self._choice_owners = [choices[c] for c in self._choices]
        self._init_words(variants, city)

    def _init_words(self, variants: list[_Variant], city: str | None) -> None:
        """The word step's tables: words of every name and town, their weights, their slips."""
        self._variants = variants
        # A place's town, as words, where it is not the place itself ("Khayelitsha" of
        # "Makhaza Informal"; not "Guguletu" of Guguletu).
        self._town_words: list[tuple[str, ...]] = []
        for place in self._places:
            town = fold(place.town) if place.town else ""
            self._town_words.append(tuple(town.split()) if town != fold(place.name) else ())
        self._city = next(
            (i for i, p in enumerate(self._places) if city and fold(p.name) == fold(city)), None
        )
        self._city_words = frozenset(fold(city).split()) if city else frozenset()
        places_with: dict[str, set[int]] = defaultdict(set)
        for variant in variants:
            for word in variant.words:
                places_with[word].add(variant.place)
        vocabulary = set(places_with).union(*self._town_words)
        total = len(self._places)
        self._weight = {
            word: _KIND_WEIGHT
            if _weak(word)
            else math.log(1 + total / max(len(places_with.get(word, ())), 1))
            for word in vocabulary
        }
        # Only distinctive words lead to a place: "park" alone must not wake 99 places.
        # A name made only of such words ("Beach Estate", "Sweet Home") is led to by each of
        # them, and matches only when every one of them is typed.
        self._leads: dict[str, list[int]] = defaultdict(list)
        for v, variant in enumerate(variants):
            plain = all(_weak(word) for word in variant.words)
            for word in set(variant.words):
                if plain or not _weak(word):
                    self._leads[word].append(v)
        # One-letter deletions of every word (and the word itself): two words one slip apart
        # share an entry, so a typed word meets only the few words it may be a slip of.
        slips: dict[str, list[str]] = defaultdict(list)
        for word in vocabulary:
            if len(word) >= _MIN_SLIP - 1:
                slips[word].append(word)
                for d in set(_deletions(word)):
                    slips[d].append(word)
        self._slips = dict(slips)
        self._vocabulary = frozenset(vocabulary)

    def match(self, text: str, limit: int = 3) -> PlaceMatch:
        words = fold(text[:_MAX_CHARS]).split()[:_MAX_WORDS]
        if not words:
            return PlaceMatch(None)
        limit = max(1, limit)
        whole = " ".join(words)

        hits = self._exact_scores(compact(whole))
        if hits:
            return self._decide(hits, limit)

        # Names made only of kind words and letters ("NT Section", "4 in 1") are found here,
        # and only when every word of them is typed.
        found = self._match_words(words, limit)
        if found is not None:
            return found
        if not any(_distinctive_word(w) for w in words):
            return PlaceMatch(None)

        scores = self._fuzzy(whole, _CUTOFF)
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

    # -- the word step -------------------------------------------------------------------------

    def _match_words(self, words: list[str], limit: int) -> PlaceMatch | None:
        seen = self._seen_words(words)
        leads = {v for word in seen for v in self._leads.get(word, ())}
        if not leads:
            return None
        by_place: dict[int, _Found] = {}
        for v in leads:
            found = self._explain(self._variants[v], seen)
            if found is None:
                continue
            before = by_place.get(found.place)
            if before is None or _rank(found) > _rank(before):
                by_place[found.place] = found
        complete = [f for f in by_place.values() if f.coverage >= _COMPLETE]
        partial = [f for f in by_place.values() if _PARTIAL <= f.coverage < _COMPLETE]
        if complete:
            return self._decide_complete(complete, partial, limit)
        # A place explaining every distinctive word typed may be offered on slips alone
        # ("Caeey Prk", "by the school in Deflt"): nothing else in the text was meant.
        meant = {
            at for at, word in enumerate(words) if not _weak(word) and word not in self._city_words
        }
        partial = [f for f in partial if f.offerable or f.positions >= meant]
        if partial:
            partial.sort(key=lambda f: (-f.coverage, -f.mass, self._places[f.place].name))
            return PlaceMatch(None, tuple(self._places[f.place] for f in partial[:limit]))
        return None

    def _seen_words(self, words: list[str]) -> dict[str, list[_Sighting]]:
        """Every known word the text holds, exactly or with one slip: how sure, where."""
        seen: dict[str, list[_Sighting]] = defaultdict(list)
        for at, word in enumerate(words):
            where = frozenset((at,))
            # What explaining this typed word is worth: a kind word ("park") little, the city's
            # name less ("Woodstock, Cape Town" is Woodstock, not Cape Town City Centre).
            worth = (
                _CITY_WORTH if word in self._city_words else _KIND_WEIGHT if _weak(word) else 1.0
            )
            if word in self._vocabulary:
                seen[word].append(_Sighting(1.0, worth, where, len(word) >= _MIN_PROPER))
            if len(word) < _MIN_SLIP - 1 or word in _WEAK or word in self._city_words:
                continue
            near = {w for key in (word, *_deletions(word)) for w in self._slips.get(key, ())}
            for known in near:
                if len(word) < _MIN_SLIP and len(known) != _MIN_SLIP:
                    continue  # a three-letter word is only a slip of a four-letter one ("prk")
                if known != word and OSA.distance(word, known, score_cutoff=1) <= 1:
                    # How close the slip is: "durbanvile" is nearer "durbanville" than
                    # "durbanvale", so the first wins where both are names.
                    sure = _SLIP * fuzz.ratio(word, known) / 100
                    strong = max(len(word), len(known)) >= _MIN_SLIPPED
                    seen[known].append(_Sighting(sure, worth * sure, where, strong))
        for at in range(len(words) - 1):
            # "du noon" is "dunoon", "table view" "tableview": two typed words, one known word.
            joined = words[at] + words[at + 1]
            if joined in self._vocabulary:
                seen[joined].append(_Sighting(1.0, 1.0, frozenset((at, at + 1))))
        return seen

    def _explain(self, variant: _Variant, seen: dict[str, list[_Sighting]]) -> _Found | None:
        used: set[int] = set()
        total = got = mass = 0.0
        lead = False
        whole = True
        proper = 0
        strong = False
        exact = 0.0
        for word in variant.words:
            weight = self._weight[word]
            total += weight
            sighting = _take(seen.get(word), used)
            if sighting is None:
                whole = False
                continue
            got += weight * sighting.sure
            exact += weight if sighting.sure == 1.0 else 0.0
            mass += sighting.worth
            if not _weak(word):
                lead = True
                proper += 1
                strong = strong or sighting.strong
        plain_whole = whole and (len(variant.words) > 1 or len(variant.words[0]) >= 3)
        if not (lead or plain_whole) or total <= 0:
            return None
        town = self._town_words[variant.place]
        if town:
            town_used = set(used)
            town_mass = 0.0
            for word in town:
                sighting = _take(seen.get(word), town_used)
                if sighting is None:
                    break
                town_mass += sighting.worth
            else:
                mass += town_mass
                used = town_used
        return _Found(
            variant.place,
            variant.weight * got / total,
            mass,
            frozenset(used),
            whole,
            offerable=strong or proper > 1 or exact >= _HALF * total,
        )

    def _decide_complete(
        self, complete: list[_Found], partial: list[_Found], limit: int
    ) -> PlaceMatch:
        if self._city is not None and len(complete) > 1:
            # "Woodstock, Cape Town": the city's name says which city, not which place in it.
            complete = [f for f in complete if f.place != self._city]
        ranked = sorted(complete, key=lambda f: (-f.mass, -f.coverage, self._places[f.place].name))
        kept: list[_Found] = []
        for found in ranked:
            # A place explaining only words a better one explains too gives way to it:
            # "Philippi" to "Philippi Park", "Heinz Park 1" (no "1" typed) to "Heinz Park".
            if not any(
                other.positions >= found.positions
                and (
                    other.mass > found.mass + 1e-9
                    or (other.whole and not found.whole and other.mass >= found.mass - 1e-9)
                )
                for other in kept
            ):
                kept.append(found)
        top = kept[0]
        # Places only partly named may still explain more of the text than the best complete
        # one ("Slovo Langa": Joe Slovo North, in Langa, over Langa), or as much where words of
        # the best one are missing too ("Makhaza": Makhaza Informal, and Msindweni Makhaza):
        # the resident chooses.
        # A settlement named after its town is no rival to the town when the text names only
        # the town ("Gugulethu" is Guguletu, not "Phola Park Gugulethu").
        top_name = fold(self._places[top.place].name)
        rivals = sorted(
            (
                f
                for f in partial
                if f.positions >= top.positions
                and (
                    f.positions != top.positions
                    or fold(self._places[f.place].town or "") != top_name
                )
                and (f.mass > top.mass + _CLOSE or (not top.whole and f.mass > top.mass - _CLOSE))
            ),
            key=lambda f: (-f.mass, -f.coverage, self._places[f.place].name),
        )
        close = [f for f in kept if f.mass > top.mass - _CLOSE]
        if rivals:
            close = sorted([*close, *rivals], key=lambda f: -f.mass)
        if len(close) == 1:
            return PlaceMatch(self._places[top.place])
        return PlaceMatch(None, tuple(self._places[f.place] for f in close[:limit]))

    # -- whole-text and window fuzzy steps ------------------------------------------------------

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


def _rank(found: _Found) -> tuple[bool, float, float]:
    """Which of a place's names the text names best: a complete one, explaining the most."""
    return (found.coverage >= _COMPLETE, found.mass, found.coverage)


def _take(found: list[_Sighting] | None, used: set[int]) -> _Sighting | None:
    """The surest sighting of a word at words not yet used; marks them used."""
    best: _Sighting | None = None
    for sighting in found or ():
        if not (sighting.where & used) and (best is None or sighting.sure > best.sure):
            best = sighting
    if best is not None:
        used.update(best.where)
    return best


def _deletions(word: str) -> list[str]:
    return [word[:i] + word[i + 1 :] for i in range(len(word))]


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
