"""The reliability suite's long runs (``chaos`` mark) run only under ``make chaos``."""

from __future__ import annotations

import pytest

from tests.reliability.figures import CHAOS


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if CHAOS:
        return
    skip = pytest.mark.skip(reason="a long run: `make chaos` (CITYBOT_CHAOS=1) runs it")
    for item in items:
        if item.get_closest_marker("chaos") is not None:
            item.add_marker(skip)
