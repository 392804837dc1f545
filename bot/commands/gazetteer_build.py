"""``citybot gazetteer build``: compile a city's open data into a gazetteer file.

With no ``--out`` it rewrites the packaged Cape Town file; a city with its own data writes its
file elsewhere and points ``CITYBOT_GAZETTEER`` at it (docs/gazetteer.md).

Example::

    citybot gazetteer build --data ./my_city_data --city "My City" --out /srv/citybot/my_city.json.gz
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import forms_runtime.gazetteer as gazetteer_package
from forms_runtime.gazetteer import build_gazetteer, load_gazetteer, write_gazetteer
from forms_runtime.gazetteer.gazetteer import PACKAGED_FILE

__all__ = ["packaged_path", "run"]


def packaged_path() -> Path:
    """Where the packaged gazetteer lives in the source tree."""
    return Path(gazetteer_package.__file__).parent / "data" / PACKAGED_FILE


def run(args: argparse.Namespace) -> int:
    data = Path(args.data)
    out = Path(args.out) if args.out else packaged_path()
    if not data.is_dir():
        print(f"citybot gazetteer build: no data folder at {data}", file=sys.stderr)
        return 2
    try:
        document = build_gazetteer(data, city=getattr(args, "city", None) or "Cape Town")
    except FileNotFoundError as error:
        print(f"citybot gazetteer build: missing source file {error.filename}", file=sys.stderr)
        return 2
    except (KeyError, ValueError) as error:
        print(f"citybot gazetteer build: unexpected source data: {error!r}", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    write_gazetteer(document, out)
    load_gazetteer(out)  # what we wrote must load; fail here rather than at serve time
    places = document["places"]
    kinds = Counter(p["kind"] for p in places)
    located = sum(p["lat"] is not None for p in places)
    print(
        f"wrote {out} ({out.stat().st_size:,} bytes): {len(document['wards'])} wards, "
        f"{len(document['settlements'])} settlement polygons, {len(places)} places "
        f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}; {located} with a point)"
    )
    # The coverage summary: what a rebuild from other data gained or lost is seen at once.
    warded = sum(bool(p["wards"]) for p in places)
    several = sum(len(p["wards"]) > 1 for p in places)
    area_types = Counter(p["area_type"] for p in places)
    print(
        f"wards: {warded} of {len(places)} places ({several} over several wards), "
        f"{len(places) - warded} not placed by the data; area types: "
        + ", ".join(f"{n} {t}" for t, n in sorted(area_types.items()))
    )
    return 0
