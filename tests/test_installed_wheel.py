"""A built wheel, installed in a fresh virtualenv, speaks every language and lints clean.

Issue 10, defect 2: only an editable install found the catalogs (they sat beside the packages, not
in them), so an installed citybot spoke English to everyone and `citybot forms lint` reported 298
missing translations. This test builds the wheel the way a packager would, installs it with
``--no-deps`` into a new virtualenv whose dependencies come from this test environment through a
``.pth`` file (so no network is needed), and runs the installed ``citybot`` from a folder outside
the checkout, so nothing can be imported from the source tree by accident.

It takes about 10 s (most of it the wheel build), hence ``slow``; it runs by default and in CI.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from forms_runtime.i18n import tr
from forms_runtime.loader import standard_forms

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow

# Never part of a build: the environment, version control, caches and the test suite itself.
_NOT_SOURCE = shutil.ignore_patterns(
    ".venv", ".git", "tests", "node_modules", "build", "dist", "*.egg-info", "__pycache__",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", "*.sqlite3",
)  # fmt: skip


def _run(*command: str | Path, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CITYBOT_"))}
    return subprocess.run(
        [str(c) for c in command],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin folder of a fresh virtualenv with the wheel built from this checkout."""
    work = tmp_path_factory.mktemp("wheel")
    # Built from a copy: an in-tree build would write build/ and *.egg-info into the checkout.
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCE)
    pip = (sys.executable, "-m", "pip")
    built = _run(
        *pip, "wheel", "--no-deps", "--no-build-isolation", "-w", work / "dist", source, cwd=work
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (work / "dist").glob("citybot-*.whl")

    venv = work / "venv"
    made = _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=work)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    added = _run(
        *pip, "--python", python, "install", "-q", "--no-deps", "--no-index", wheel, cwd=work
    )
    assert added.returncode == 0, added.stderr

    # The dependencies come from this test environment. A path listed in a .pth file is appended
    # after the venv's own site-packages, and .pth files inside it are not read, so this
    # environment's editable install of the checkout stays invisible.
    purelib = _run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=work)
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib"), *site.getsitepackages()}
    (Path(purelib.stdout.strip()) / "citybot_test_dependencies.pth").write_text(
        "".join(f"{path}\n" for path in sorted(ours)), encoding="utf-8"
    )
    return venv / "bin"


def test_the_packages_are_imported_from_the_installed_wheel(installed: Path) -> None:
    where = _run(
        installed / "python",
        "-c",
        "import bot, forms_runtime; print(bot.__file__); print(forms_runtime.__file__)",
        cwd=installed,
    )
    assert where.returncode == 0, where.stderr
    for line in where.stdout.splitlines():
        assert Path(line).is_relative_to(installed.parent), line


def test_forms_lint_is_clean_outside_the_checkout(installed: Path, tmp_path: Path) -> None:
    lint = _run(installed / "citybot", "forms", "lint", cwd=tmp_path)
    assert lint.returncode == 0, lint.stdout[-2000:] + lint.stderr
    assert lint.stdout.splitlines()[-1].startswith("0 errors, ")


def test_an_isizulu_chat_in_the_installed_citybot(installed: Path, tmp_path: Path) -> None:
    pothole = standard_forms()["pothole"]
    chat = _run(
        installed / "citybot", "chat", "--locale", "zu", cwd=tmp_path, stdin="umgodi\n1\n/quit\n"
    )
    assert chat.returncode == 0, chat.stderr
    # The picker offers the pothole form by its isiZulu title; chosen, it asks for consent.
    for english in (pothole.title, "Do you agree to share your contact details for this report?"):
        zulu = tr("zu", english)
        assert zulu != english, f"no isiZulu for {english!r} in the catalogs of the checkout"
        assert zulu in chat.stdout, chat.stdout


def test_the_staff_console_pages_ship_in_the_wheel(installed: Path, tmp_path: Path) -> None:
    # Templates and the console's script are data files, not modules: the wheel must carry them.
    script = (
        "from aiohttp import web\n"
        "from bot.web import staff_console as c\n"
        "from bot.web.webchat import STATIC_DIR\n"
        "env = c.environment(web.Application())\n"
        "for page in (c.SIGN_IN, *c.PAGES):\n"
        "    env.get_template(f'staff/{page.name}.html').render(c.page_context(page))\n"
        "print((STATIC_DIR / 'staff' / 'console.js').is_file(), STATIC_DIR)\n"
    )
    shown = _run(installed / "python", "-c", script, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    found, where = shown.stdout.split()
    assert found == "True" and Path(where).is_relative_to(installed.parent), shown.stdout


def test_the_dashboard_ships_its_catalogs_and_chart_library(
    installed: Path, tmp_path: Path
) -> None:
    # The dashboard's .po catalogs, its script and the vendored Chart.js with its licence are
    # data files: an installed citybot must still speak isiZulu and draw charts.
    script = (
        "from bot.web.dashboard import render_dashboard\n"
        "from bot.web.webchat import STATIC_DIR\n"
        "from forms_runtime.loader import standard_forms\n"
        "html = render_dashboard('zu', 'month', standard_forms())\n"
        "vendor = STATIC_DIR / 'vendor' / 'chartjs'\n"
        "print('Isikhathi sokuvala, ngewadi' in html, (vendor / 'chart.umd.min.js').is_file(),\n"
        "      (vendor / 'LICENSE.md').is_file(), (STATIC_DIR / 'dashboard' / 'dashboard.js').is_file())\n"
    )
    shown = _run(installed / "python", "-c", script, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == ["True"] * 4, shown.stdout


def test_the_suburb_outlines_ship_in_the_wheel(installed: Path, tmp_path: Path) -> None:
    # `citybot gazetteer build` from an installed citybot finds Cape Town's suburb outlines, which
    # are not among the shared data folder's files.
    script = (
        "from forms_runtime.gazetteer.build import suburb_outlines_path\n"
        "path = suburb_outlines_path('.', 'Cape Town')\n"
        "print(path is not None and path.is_file(), path)\n"
    )
    shown = _run(installed / "python", "-c", script, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    found, where = shown.stdout.split()
    assert found == "True" and Path(where).is_relative_to(installed.parent), shown.stdout
