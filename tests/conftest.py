"""Shared test fixtures: the real PostgreSQL and Redis servers, when configured.

Tests that need a server ask for ``postgres_url`` or ``redis_url``. Where the server is not
configured they skip with a clear message; in CI (CITYBOT_TEST_REQUIRE_SERVICES=1) a missing
server is a failure, never a silent skip (``tests.storage.databases`` decides, for fixtures and
helpers alike).
"""

from __future__ import annotations

import pytest

from tests.storage.databases import postgres_url_or_skip, redis_url_or_skip


@pytest.fixture
def postgres_url() -> str:
    return postgres_url_or_skip()


@pytest.fixture
def redis_url() -> str:
    return redis_url_or_skip()
