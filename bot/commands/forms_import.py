"""``citybot forms import-open311 URL``: write form YAML from a city's GeoReport v2 services.

Each service becomes one form: a location step first (every report needs a place), then the
service definition's attributes in their ``order`` (``variable: false`` ones are notes for
people, not questions, and are skipped), with datatypes mapped onto step types. The service's
keywords become the English keywords of the service picker. The written files are linted; what a
person must still add (translations, keywords in other languages, shorter prompts) is listed.

Example::

    citybot forms import-open311 https://city.example/open311/v2 --out forms/
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from city.open311.client import Open311Backend
from city.open311.errors import Open311Error
from city.open311.mapping import option_id_for, step_id_for, to_identifier
from city.open311.types import Attribute, Service, ServiceDefinition
from forms_runtime.linter import lint_paths

__all__ = ["STEP_TYPES", "form_document", "run"]

# GeoReport datatype -> citybot step type.
STEP_TYPES = {
    "string": "text",
    "text": "long_text",
    "number": "number",
    "datetime": "date",
    "singlevaluelist": "choice",
    "multivaluelist": "multi_choice",
}
# Texts the standard forms already use, so their translations exist in every catalog.
LOCATION_PROMPT = "Where is the problem?"
LOCATION_HINT = "Send a location pin, or type the street and suburb."
CONFIRMATION = "Thank you. Your report has been sent to the city."
RETENTION_DAYS = 365


def _step(attribute: Attribute, taken: set[str]) -> dict[str, Any]:
    step_id = step_id_for(attribute.code)
    while step_id in taken:
        step_id += "_2"
    taken.add(step_id)
    step: dict[str, Any] = {
        "id": step_id,
        "type": STEP_TYPES.get(attribute.datatype, "text"),
        "prompt": attribute.description or attribute.code,
    }
    if attribute.datatype_description:
        step["hint"] = attribute.datatype_description
    if not attribute.required:
        step["required"] = False
    if attribute.values and step["type"] in ("choice", "multi_choice"):
        options = []
        seen: set[str] = set()
        for value in attribute.values:
            option_id = option_id_for(value.key)
            if option_id not in seen:
                seen.add(option_id)
                options.append({"id": option_id, "label": value.name})
        step["options"] = options
    return step


def form_document(
    service: Service, definition: ServiceDefinition | None, form_id: str
) -> dict[str, Any]:
    """The YAML document (as Python) for one city service."""
    steps: list[dict[str, Any]] = [
        {"id": "location", "type": "location", "prompt": LOCATION_PROMPT, "hint": LOCATION_HINT}
    ]
    taken = {"location"}
    attributes = sorted(definition.attributes if definition else (), key=lambda a: a.order)
    steps += [_step(a, taken) for a in attributes if a.variable]
    keywords = list(service.keywords) or [service.service_name.lower()]
    document: dict[str, Any] = {
        "id": form_id,
        "version": 1,
        "title": service.service_name,
        "service_code": service.service_code,
        "description": (service.description or service.service_name).strip(),
    }
    if service.group:
        document["group"] = to_identifier(service.group, "g")
    document |= {
        "retention_days": RETENTION_DAYS,
        "keywords": {"en": keywords},
        "steps": steps,
        "confirmation": CONFIRMATION,
    }
    return document


async def _import(args: argparse.Namespace) -> list[Path]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    backend = Open311Backend(args.url, api_key=args.api_key, jurisdiction_id=args.jurisdiction_id)
    written: list[Path] = []
    used: set[str] = set()
    try:
        for service in await backend.services():
            definition = (
                await backend.service_definition(service.service_code) if service.metadata else None
            )
            form_id = to_identifier(service.service_name, "service")
            while form_id in used:
                form_id += "_2"
            used.add(form_id)
            path = out / f"{form_id}.yaml"
            text = yaml.safe_dump(
                form_document(service, definition, form_id),
                sort_keys=False,
                allow_unicode=True,
                width=100,
            )
            path.write_text(
                f"# Imported from {args.url} (service {service.service_code}).\n{text}", "utf-8"
            )
            written.append(path)
    finally:
        await backend.close()
    return written


def run(args: argparse.Namespace) -> int:
    try:
        written = asyncio.run(_import(args))
    except Open311Error as exc:
        print(f"citybot: could not read the services from {args.url}: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {len(written)} forms to {args.out}")
    if not written:
        return 0
    issues = lint_paths(written)
    errors = [i for i in issues if i.severity == "error"]
    if not errors:
        print("The forms lint clean.")
        return 0
    counts = Counter(i.rule for i in errors)
    print("Before residents can use these forms, a person must add:")
    if counts["missing-translation"]:
        print(
            f"  - translations for af, zu and xh of the new texts ({counts['missing-translation']} missing): "
            "run `make locales`, then translate forms_runtime/locales/<lang>/LC_MESSAGES/citybot.po"
        )
    if counts["missing-keywords"]:
        print(f"  - service picker keywords in af, zu and xh ({counts['missing-keywords']} forms)")
    for issue in errors:
        if issue.rule not in ("missing-translation", "missing-keywords"):
            print(f"  - {issue.path}:{issue.line}: {issue.message} ({issue.hint})")
    print("Check them again with `citybot forms lint " + str(args.out) + "`.")
    return 1
