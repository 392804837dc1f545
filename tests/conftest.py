"""Shared test fixtures: the real PostgreSQL and Redis servers, when configured.

Tests that need a server ask for ``postgres_url`` or ``redis_url``. Where the server is not
configured they skip with a clear message; in CI (CITYBOT_TEST_REQUIRE_SERVICES=1) a missing
server is a failure, never a silent skip (``tests.storage.databases`` decides, for fixtures and
helpers alike).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.servers import RedisClusterServers
from tests.log_secrets import scan
from tests.storage.databases import postgres_url_or_skip, redis_url_or_skip


@pytest.fixture
def postgres_url() -> str:
    return postgres_url_or_skip()


@pytest.fixture
def redis_url() -> str:
    return redis_url_or_skip()


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """A Redis Cluster of three primaries of the test run's own (``tests.cluster.servers``),
    started when a test first asks for it and stopped at the end of the run."""
    with RedisClusterServers() as cluster:
        yield cluster.url


# -- no secret in any log line (tests/log_secrets.py) --------------------------------------------

_LEAKS: dict[str, None] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Each phase's report holds the log of the phases before it too: kept once.
    captured = report.caplog
    if captured:
        # The fakes' own access logs name the URLs citybot called (a Telegram bot's token is in
        # its path by the Bot API's design); they are the provider's side, not citybot's logs.
        ours = "\n".join(
            line for line in captured.splitlines() if "aiohttp.access:web_log.py" not in line
        )
        for what, line in scan(ours):
            _LEAKS[f"{report.nodeid}: {what}: {line}"] = None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _LEAKS:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"{len(_LEAKS)} log lines carry secrets:", red=True)
            for leak in list(_LEAKS)[:50]:
                reporter.write_line("  " + leak)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
