"""``citybot data backfill`` run for real on a SQLite file: counts printed, idempotent."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bot.cli import main
from storage.migrate import upgrade_database
from tests.pothole_report import POTHOLE_ANSWERS

_INSERT = (
    "INSERT INTO submissions (reference, form_id, form_version, service_code, locale, answers,"
    " lat, lon, address_string, status, created_at, updated_at)"
    " VALUES (?, 'pothole', 1, 'ROADS-POTHOLE', 'en', ?, ?, ?, ?, 'filed',"
    " '2026-01-05 10:00:00', '2026-01-05 10:00:00')"
)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_backfill_prints_counts_and_a_second_run_finds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "citybot.sqlite3"
    monkeypatch.setenv("CITYBOT_DATABASE_URL", f"sqlite:///{path}")
    asyncio.run(upgrade_database(f"sqlite:///{path}"))
    with sqlite3.connect(path) as db:
        pin = POTHOLE_ANSWERS["location"]
        db.execute(
            _INSERT, ("CT-A00001", '{"location": {"source": "gps"}}', pin["lat"], pin["lon"], None)
        )
        db.execute(
            _INSERT, ("CT-A00002", "{}", None, None, "Enkanini informal settlement, Khayelitsha")
        )
        db.execute(_INSERT, ("CT-A00003", "{}", None, None, "at the corner by the tree"))
    code, out, _ = _run(capsys, "data", "backfill", "--batch-size", "2")
    assert code == 0
    assert out == "placed 2 requests (pin 1, text 1); 1 unknown (kept, counted as unknown)\n"
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT reference, ward, suburb, area_type, place_source FROM submissions"
            " ORDER BY reference"
        ).fetchall()
    assert rows[0][1] is not None and rows[0][4] == "pin"
    assert rows[1][2:] == ("Khayelitsha", "informal_settlement", "text")
    assert rows[2][1:] == (None, None, "unknown", "none")

    code, out, _ = _run(capsys, "data", "backfill")
    assert (code, out) == (0, "placed 0 requests; 0 unknown (nothing left to place)\n")


def test_a_batch_size_below_one_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITYBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    code, _, err = _run(capsys, "data", "backfill", "--batch-size", "0")
    assert code == 2 and "--batch-size" in err
