from __future__ import annotations

import os
from pathlib import Path

import pytest

from forms_runtime.gazetteer import Gazetteer, default_gazetteer

# The source data lives beside the repository (../shared/data), or where CITYBOT_TEST_DATA says.
DATA_DIR = Path(
    os.environ.get("CITYBOT_TEST_DATA", Path(__file__).resolve().parents[3] / "shared" / "data")
)


@pytest.fixture(scope="session")
def gazetteer() -> Gazetteer:
    return default_gazetteer()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "cct_wards_2021.geojson").exists():
        pytest.skip(f"source data folder {DATA_DIR} is absent (set CITYBOT_TEST_DATA to it)")
    return DATA_DIR
