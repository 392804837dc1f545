"""Recall of typed places: how often what residents type finds the place they mean.

Run: .venv/bin/python bench/places.py [--places 240] [--seed 14] [--by-template] [--misses N]

A seeded sample of the city's suburbs (and towns) and informal settlements, half each, is put
through phrasings residents really type: the bare name, typos in every word, "next to the
clinic in ...", "... near the taxi rank", a street address, a settlement with its town, a part
of a settlement's name ("Makhaza" for "Makhaza Informal" and "Msindweni Makhaza"), and more
below. For suburbs and settlements apart it prints:

- recall: the place is the best match, or among the candidates offered to choose from;
- wrong: another place is the best match (the resident is told a place they did not mean);
- the time per call.

docs/gazetteer.md keeps the figures; tests/gazetteer/test_recall.py asserts the target on a
smaller sample so CI guards it.
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from forms_runtime.gazetteer import Gazetteer, Place, default_gazetteer
from forms_runtime.gazetteer.folding import compact, fold

__all__ = ["Phrasing", "Recall", "measure", "phrasings", "sample_places"]

# Keys a finger slips to on a phone keyboard (QWERTY, letters only).
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS = {
    c: "".join(row[j] for j in (i - 1, i + 1) if 0 <= j < len(row))
    for row in _ROWS
    for i, c in enumerate(row)
}
# Words that name a kind of place, never which one: a part of a name made only of these (and
# numbers, and letters like "BM") says nothing a resident would type alone.
_KIND_WORD_LIST = """informal infill infills section site sites road rd street st avenue ave crescent drive
    square park camp tra school small farmers holding business remainder east west north south
    temporary village heights valley the se en and of ext block home island green area city
    farm farms walk town bay plaas lot new look"""
_KIND_WORDS = frozenset(_KIND_WORD_LIST.split())


@dataclass(frozen=True, slots=True)
class Phrasing:
    text: str
    place: Place  # the place the resident means
    template: str


@dataclass
class Recall:
    """Counts for one kind of place."""

    phrasings: int = 0
    found: int = 0  # best match, or among the candidates
    best: int = 0  # the best match
    wrong: int = 0  # another place is the best match

    def line(self, label: str) -> str:
        n = max(self.phrasings, 1)
        return (
            f"{label:<13}{self.phrasings:>6}  recall {100 * self.found / n:5.1f}%"
            f"  best {100 * self.best / n:5.1f}%  wrong best {100 * self.wrong / n:4.1f}%"
        )


def typed_name(place: Place) -> str:
    """The name as a resident knows it: without the words added to keep display names unique
    ("Enkanini informal settlement", "Fisantekraal (Kraaifontein)")."""
    name = place.name.removesuffix(f" ({place.town})")
    return name.removesuffix(" informal settlement")


def sample_places(gazetteer: Gazetteer, count: int, seed: int) -> list[Place]:
    """``count`` places, half suburbs (and towns) and half informal settlements, seeded."""
    rng = random.Random(seed)
    suburbs = sorted(
        (p for p in gazetteer.places if p.kind in ("suburb", "town")), key=lambda p: p.name
    )
    settlements = sorted(
        (p for p in gazetteer.places if p.kind == "informal_settlement"), key=lambda p: p.name
    )
    half = count // 2
    return rng.sample(suburbs, half) + rng.sample(settlements, count - half)


def typo(word: str, rng: random.Random) -> str:
    """One slip in a word of three letters or more: a letter dropped, doubled, swapped with the
    next, or a neighbouring key."""
    if len(word) < 3 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word))  # the first letter is the one residents get right
    kind = rng.choice(("drop", "double", "swap", "key"))
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    if kind == "swap" and i < len(word) - 1:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    near = _NEIGHBOURS.get(word[i].lower())
    if not near:
        return word[:i] + word[i + 1 :]
    return word[:i] + rng.choice(near) + word[i + 1 :]


def typos(text: str, rng: random.Random) -> str:
    return " ".join(typo(w, rng) for w in text.split())


def partial_names(place: Place, known: set[str]) -> list[str]:
    """Parts of a settlement's name a resident may give alone: a side of " / " or " - ", its
    first words ("Joe Slovo" of "Joe Slovo Park Infills"), or one proper word of it ("Makhaza"
    of "Makhaza Informal" and of "Msindweni Makhaza"). A part must keep a proper name (not
    "Park Philippi" or "Island"), and parts that are another place's name are left out: then
    that place is the right answer."""
    name = typed_name(place)
    parts = [p.strip() for p in re.split(r"\s+/\s+|\s+-\s+", name)]
    out: set[str] = {p for p in parts if p != name}
    for part in parts:
        words = part.split()
        out.update(" ".join(words[:n]) for n in range(1, len(words)))
        out.update(w for w in words if _proper(w))
    return sorted(
        p
        for p in out
        if p != name
        and _proper(p.split()[0])
        and any(_proper(w) and len(w) >= 5 for w in p.split())
        and compact(fold(p)) not in known
    )


def _proper(word: str) -> bool:
    return word.isalpha() and word.lower() not in _KIND_WORDS


_Template = Callable[[Place, str, random.Random], str | None]


def _with_town(place: Place, name: str, rng: random.Random) -> str | None:
    if not place.town or compact(fold(place.town)) in (compact(fold(name)), "capetown"):
        return None
    return rng.choice(("{n}, {t}", "{n} {t}", "{n} in {t}", "{n} {t} area")).format(
        n=name, t=place.town
    )


_STREETS = ("Main Road", "Ntlazane Street", "Church St", "Voortrekker Rd", "Govan Mbeki Road")
TEMPLATES: dict[str, _Template] = {
    "name": lambda p, n, r: n,
    "lower case": lambda p, n, r: n.lower(),
    "typos": lambda p, n, r: typos(n, r),
    "typos, lower": lambda p, n, r: typos(n, r).lower(),
    "clinic in": lambda p, n, r: f"next to the clinic in {n}",
    "taxi rank": lambda p, n, r: f"{n} near the taxi rank",
    "typos in sentence": lambda p, n, r: r.choice(
        ("by the school in {n}", "{n} opposite the shops", "its in {n} by the church")
    ).format(n=typos(n, r)),
    "street address": lambda p, n, r: f"{r.randint(1, 250)} {r.choice(_STREETS)}, {n}",
    "i stay": lambda p, n, r: r.choice(("i stay in {n}", "I live at {n}", "we are in {n}")).format(
        n=n
    ),
    "with town": _with_town,
    "typos with town": lambda p, n, r: _with_town(p, typos(n, r), r),
    "cape town": lambda p, n, r: f"{n}, Cape Town",
}
SETTLEMENT_TEMPLATES: dict[str, _Template] = {
    "informal settlement": lambda p, n, r: r.choice(
        ("{n} informal settlement", "{n} camp", "the informal settlement at {n}")
    ).format(n=n),
}


def phrasings(places: list[Place], gazetteer: Gazetteer, seed: int) -> Iterator[Phrasing]:
    """Every template over every place (a template that does not apply is skipped), seeded."""
    rng = random.Random(seed)
    # Every name, alias and spelling the gazetteer knows exactly (a bench may look inside).
    known = set(gazetteer._index._exact)
    for place in places:
        name = typed_name(place)
        templates = dict(TEMPLATES)
        if place.kind == "informal_settlement":
            templates.update(SETTLEMENT_TEMPLATES)
            parts = partial_names(place, known)
            if parts:
                part = rng.choice(parts)
                templates["partial name"] = lambda p, n, r, part=part: part
                templates["partial, typos"] = lambda p, n, r, part=part: typos(part, r)
                templates["partial with town"] = lambda p, n, r, part=part: _with_town(p, part, r)
        for label, template in templates.items():
            text = template(place, name, rng)
            if text:
                yield Phrasing(text, place, label)


def measure(
    gazetteer: Gazetteer, texts: list[Phrasing]
) -> tuple[dict[str, Recall], dict[str, Recall], list[tuple[Phrasing, str]], float]:
    """Recall by kind ("suburbs", "settlements") and by template, the misses, seconds per call."""
    by_kind: dict[str, Recall] = {}
    by_template: dict[str, Recall] = {}
    misses: list[tuple[Phrasing, str]] = []
    start = time.perf_counter()
    results = [gazetteer.match_place(p.text) for p in texts]
    seconds = (time.perf_counter() - start) / max(len(texts), 1)
    for phrasing, match in zip(texts, results, strict=True):
        kind = "settlements" if phrasing.place.kind == "informal_settlement" else "suburbs"
        found = match.best == phrasing.place or phrasing.place in match.candidates
        wrong = match.best is not None and match.best != phrasing.place
        for recall in (
            by_kind.setdefault(kind, Recall()),
            by_template.setdefault(phrasing.template, Recall()),
        ):
            recall.phrasings += 1
            recall.found += found
            recall.best += match.best == phrasing.place
            recall.wrong += wrong
        if not found or wrong:
            got = (
                f"best {match.best.name}"
                if match.best
                else f"candidates {[c.name for c in match.candidates]}"
            )
            misses.append((phrasing, got))
    return by_kind, by_template, misses, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--places", type=int, default=240)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--by-template", action="store_true")
    parser.add_argument("--misses", type=int, default=0, help="print this many misses")
    args = parser.parse_args()

    gazetteer = default_gazetteer()
    places = sample_places(gazetteer, args.places, args.seed)
    texts = list(phrasings(places, gazetteer, args.seed))
    by_kind, by_template, misses, seconds = measure(gazetteer, texts)
    print(f"{len(places)} places, {len(texts)} phrasings (seed {args.seed})")
    for kind in ("suburbs", "settlements"):
        print(by_kind[kind].line(kind))
    if args.by_template:
        for label, recall in sorted(by_template.items()):
            print("  " + recall.line(label[:11]) + f"  {label}")
    print(f"match_place: {seconds * 1e6:.0f} us per call on average")
    shown: Counter[str] = Counter()
    for phrasing, got in misses[: args.misses]:
        shown[phrasing.template] += 1
        print(f"  [{phrasing.template}] {phrasing.text!r} -> {got} (meant {phrasing.place.name})")


if __name__ == "__main__":
    main()
