"""Shared test fixtures: the real PostgreSQL and Redis servers, when configured.

Tests that need a server ask for ``postgres_url`` or ``redis_url``. Where the server is not
configured they skip with a clear message; in CI (CITYBOT_TEST_REQUIRE_SERVICES=1) a missing
server is a failure, never a silent skip.
"""

from __future__ import annotations

import os

import pytest


def _service(var: str, what: str) -> str:
    url = os.environ.get(var)
    if url:
        return url
    message = f"{what} not configured: set {var} (CI sets it)"
    if os.environ.get("CITYBOT_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def postgres_url() -> str:
    return _service("CITYBOT_TEST_POSTGRES_URL", "PostgreSQL")


@pytest.fixture
def redis_url() -> str:
    return _service("CITYBOT_TEST_REDIS_URL", "Redis")
