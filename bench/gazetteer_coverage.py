"""How much of the gazetteer is placed (wards, area type, point), and how fast look-ups are.

Run: .venv/bin/python bench/gazetteer_coverage.py [--file path/to/gazetteer.json.gz]
Prints, per kind of place, how many have a ward, how many lie over several wards, how many have
an area type other than "unknown" and a point, then the time of ``match_place`` over typical texts
and of ``locate`` over random points (one core, best of 5 rounds). docs/gazetteer.md keeps the
figures measured on this machine (the coverage table, before and after the suburb outlines:
``--file`` an older compiled file).
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from collections.abc import Callable

from forms_runtime.gazetteer import Gazetteer, default_gazetteer, load_gazetteer

# What residents type where a form asks "where?": names, typos, sentences, no place at all.
TEXTS = (
    "mitchells plain",
    "Mitchell's Plain",
    "khayelitsa",
    "Site C Khayelitsha",
    "Green Point Khayelitsha",
    "the road",
    "Joe Slovo",
    "Browns Farm",
    "corner of NY1 street and NY 108 road, Gugulethu",
    "12 Main Road, Sea Point",
    "I live in Langa near the station",
    "there is a big pothole outside number 5 on the main road by the shops",
    "Durbanvile",
    "Marikana",
    "Enkanini",
    "Lentegeur Mitchells Plain",
)


def coverage(gazetteer: Gazetteer) -> list[tuple[str, int, int, int, int, int]]:
    """(kind, places, with ward, over several wards, with area type, with point) per kind, then
    the total."""
    rows: dict[str, Counter[str]] = {}
    for place in gazetteer.places:
        for kind in (place.kind, "all"):
            counts = rows.setdefault(kind, Counter())
            counts["places"] += 1
            counts["ward"] += place.ward is not None
            counts["several"] += len(place.wards) > 1
            counts["area_type"] += place.area_type != "unknown"
            counts["point"] += place.lat is not None
    order = [*sorted(k for k in rows if k != "all"), "all"]
    return [
        (
            k,
            rows[k]["places"],
            rows[k]["ward"],
            rows[k]["several"],
            rows[k]["area_type"],
            rows[k]["point"],
        )
        for k in order
    ]


def _best_microseconds(calls: list[Callable[[], object]], rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for call in calls:
            call()
        best = min(best, (time.perf_counter() - start) / len(calls))
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", help="a compiled gazetteer (default: the packaged one)")
    args = parser.parse_args()

    start = time.perf_counter()
    gazetteer = load_gazetteer(args.file) if args.file else default_gazetteer()
    load_s = time.perf_counter() - start

    print(f"{'kind':<22}{'places':>8}{'ward':>8}{'several':>9}{'area type':>11}{'point':>8}")
    for kind, places, ward, several, area_type, point in coverage(gazetteer):
        print(f"{kind:<22}{places:>8}{ward:>8}{several:>9}{area_type:>11}{point:>8}")

    rng = random.Random(7)
    points = [(rng.uniform(-34.4, -33.4), rng.uniform(18.2, 19.0)) for _ in range(2000)]
    match_us = _best_microseconds([lambda t=t: gazetteer.match_place(t) for t in TEXTS * 20])
    locate_us = _best_microseconds([lambda p=p: gazetteer.locate(*p) for p in points])
    print(
        f"load {load_s:.3f} s; match_place {match_us:.1f} us/call; locate {locate_us:.1f} us/call"
    )


if __name__ == "__main__":
    main()
