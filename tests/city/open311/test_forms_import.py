"""`citybot forms import-open311` against the built-in server over HTTP, as a real command."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import yaml

from bot.commands.forms_import import form_document
from city.open311.formats import parse_service_definition, parse_services
from forms_runtime.linter import lint_paths
from forms_runtime.loader import load_form
from tests.city.open311.conftest import FIXTURES, ServerFactory


async def _citybot(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


async def test_import_from_the_built_in_server(
    open311_server: ServerFactory, forms, tmp_path: Path
) -> None:
    url = await open311_server()
    code, output = await _citybot("forms", "import-open311", url, "--out", str(tmp_path))
    written = sorted(tmp_path.glob("*.yaml"))
    assert len(written) == len(forms), output
    pothole = load_form(tmp_path / "pothole_or_road_damage.yaml")
    assert pothole.service_code == "ROADS-POTHOLE"
    assert [s.id for s in pothole.steps] == ["location", "kind", "size", "danger", "callback"]
    assert pothole.steps[0].type.value == "location"
    assert [o.id for o in pothole.step("kind").options] == ["pothole", "sunken", "cracked"]
    assert not pothole.step("size").required
    assert "pothole" in pothole.keywords["en"]
    # English is complete: the only thing missing is what a person must add for other languages.
    assert [i for i in lint_paths(written, locales=["en"]) if i.severity == "error"] == []
    assert code == 1
    assert "a person must add" in output and "af, zu and xh" in output


async def test_unreachable_endpoint_is_reported(tmp_path: Path) -> None:
    code, output = await _citybot(
        "forms", "import-open311", "http://127.0.0.1:9/open311/v2", "--out", str(tmp_path)
    )
    assert code == 2 and "could not read the services" in output


def test_spec_definition_mapping(tmp_path: Path) -> None:
    [service] = parse_services(
        b'[{"service_code":"DMV66","service_name":"Damaged vehicle","metadata":true,"keywords":"car, dent","group":"Vehicles & Roads"}]',
        "json",
    )
    definition = parse_service_definition(
        (FIXTURES / "spec_json/service_definition.json").read_bytes(), "json"
    )
    document = form_document(service, definition, "damaged_vehicle")
    steps = document["steps"]
    assert [s["id"] for s in steps] == [
        "location",
        "whishetn",
        "damage",
    ]  # NOTICE (variable=false) skipped
    assert steps[1]["type"] == "choice" and [o["id"] for o in steps[1]["options"]] == [
        "v_123",
        "v_124",
    ]
    assert steps[2]["type"] == "multi_choice" and steps[2]["required"] is False
    assert steps[2]["hint"] == "Select all that apply"
    assert document["keywords"] == {"en": ["car", "dent"]}
    assert document["group"] == "vehicles_roads"
    path = tmp_path / "damaged_vehicle.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), "utf-8")
    assert load_form(path).step("whishetn").options[0].label == "Ford"


def test_answers_to_an_imported_form_go_back_as_the_citys_codes(tmp_path: Path) -> None:
    from city.open311.mapping import draft_from_answers

    [service] = parse_services(
        b'[{"service_code":"DMV66","service_name":"Damaged vehicle","metadata":true}]', "json"
    )
    definition = parse_service_definition(
        (FIXTURES / "spec_json/service_definition.json").read_bytes(), "json"
    )
    path = tmp_path / "damaged_vehicle.yaml"
    path.write_text(
        yaml.safe_dump(form_document(service, definition, "damaged_vehicle"), sort_keys=False),
        "utf-8",
    )
    form = load_form(path)
    answers = {
        "location": {"lat": -34.0, "lon": 18.6},
        "whishetn": "v_124",
        "damage": ["window", "tyre"],
    }
    draft = draft_from_answers(form, answers, definition=definition)
    assert dict(draft.attributes) == {"WHISHETN": "124", "DAMAGE": ["window", "tyre"]}
    assert "Chrysler" in draft.description
