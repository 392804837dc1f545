"""The admin API fuzzed from its own OpenAPI document (schemathesis) against a real
``citybot serve``, signed in with an admin's API token: 0 server errors, 0 answers that
contradict the document (status codes, content types, bodies, headers).

Every operation the document names gets generated cases, valid ones and, for operations that
take input, invalid ones; each answer goes through all of schemathesis's checks. Every
contradiction found is listed at the end (not only the first), so one run names them all.
``CITYBOT_SCHEMA_EXAMPLES`` (or ``make chaos``) sets the cases per operation and mode.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from tests.reliability.figures import chaos, figure
from tests.web.serve_process import CITYBOT, ServeProcess

EXAMPLES = int(os.environ.get("CITYBOT_SCHEMA_EXAMPLES", chaos(5, 400)))
ADMIN = "fuzz-admin@city.example"
ROLES = ["admin", "agent", "supervisor", "broadcaster", "approver", "analyst"]
# Two checks ask more than the document says. ``ignored_auth`` sends an invalid session cookie
# beside the valid token and expects a refusal; the document (rightly) lets either scheme sign
# a call in, so the token wins (tests/reliability/test_forged.py and the access matrix prove
# every bad credential alone is refused). ``positive_data_acceptance`` wants every value the
# schema allows accepted, but rules across fields (from before to, a cursor from an earlier
# page, an email that is an address) are no schema's to say: each such refusal is the 400 the
# document names, and a 5xx or an undocumented answer still fails.
EXCLUDED = [ignored_auth, positive_data_acceptance]
# Server-sent events never end: the fuzzer reads the first answer's head only (see _call).
STREAMS = {"/api/v1/support/events"}


def _citybot(server: ServeProcess, *args: str) -> str:
    done = subprocess.run(
        [str(CITYBOT), *args],
        cwd=server.workdir,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ServeProcess, str, str]]:
    """A running serve, an admin's API token, and a decoy account's id."""
    server = ServeProcess(tmp_path, {"CITYBOT_LOG_LEVEL": "WARNING"})
    _citybot(server, "db", "upgrade")
    _citybot(server, "staff", "add", ADMIN, "--role", *ROLES)
    token = _citybot(server, "staff", "token", ADMIN, "--role", *ROLES, "--days", "1")
    token = token.strip().splitlines()[-1]
    server.start()
    try:
        yield server, token, ADMIN
    finally:
        if server.process is not None and server.process.poll() is None:
            server.stop(signal.SIGTERM)


def _own_ids(server: ServeProcess, token: str) -> set[str]:
    """The ids the fuzzer must not revoke or disable: its own account and token."""
    auth = {"Authorization": f"Bearer {token}"}
    accounts = requests.get(f"{server.url}/api/v1/accounts", headers=auth, timeout=30).json()
    tokens = requests.get(f"{server.url}/api/v1/tokens", headers=auth, timeout=30).json()
    ids = {str(a["id"]) for a in accounts["items"] if a["email"] == ADMIN}
    ids |= {str(t["id"]) for t in tokens["items"] if token.startswith(t["prefix"])}
    return ids


def test_the_admin_api_answers_as_its_openapi_document_says(
    served: tuple[ServeProcess, str, str],
) -> None:
    server, token, _ = served
    auth = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_url(f"{server.url}/api/v1/openapi.json")
    protected = _own_ids(server, token)
    calls: Counter[int] = Counter()
    contradictions: dict[str, str] = {}
    operations = 0
    started = time.monotonic()

    def fuzz(operation: Any, mode: GenerationMode) -> None:
        strategy = operation.as_strategy(generation_mode=mode).filter(
            lambda case: (
                not (
                    case.method in ("DELETE", "PATCH")
                    and (case.path_parameters or {}).get("id") in protected
                )
            )
        )

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def one_case(case: Any) -> None:
            response = _call(case, server.url, auth)
            calls[response.status_code] += 1
            try:
                case.validate_response(response, headers=auth, excluded_checks=EXCLUDED)
            except (AssertionError, FailureGroup) as found:
                failures = found.exceptions if isinstance(found, FailureGroup) else [found]
                for failure in failures:
                    key = f"{case.method} {case.path} ({mode.value}): {_title(failure)}"
                    contradictions.setdefault(key, _evidence(failure, case, auth))

        one_case()

    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        fuzz(operation, GenerationMode.POSITIVE)
        if operation.body or operation.query or operation.path_parameters:
            fuzz(operation, GenerationMode.NEGATIVE)
    elapsed = time.monotonic() - started
    server_errors = sum(n for status, n in calls.items() if status >= 500)
    assert server.process is not None and server.process.poll() is None, "serve is down"
    listed = "\n".join(f"{k}\n    {v}" for k, v in sorted(contradictions.items()))
    assert not contradictions, f"{len(contradictions)} contradictions:\n{listed}"
    figure(
        f"admin API (schemathesis): {operations} operations, {calls.total()} calls in "
        f"{elapsed:.0f} s, {server_errors} 5xx, 0 answers contradicting the document "
        f"(statuses: {dict(sorted(calls.items()))})"
    )


def _call(case: Any, base_url: str, auth: dict[str, str]) -> Any:
    if case.path in STREAMS:
        # Read the head and the first event, then hang up: a stream is open for good.
        return case.call(base_url=base_url, headers=auth, timeout=10, stream=True)
    return case.call(base_url=base_url, headers=auth, timeout=30)


def _title(failure: BaseException) -> str:
    title = getattr(failure, "title", None) or str(failure).strip() or type(failure).__name__
    return re.sub(r"\s+", " ", str(title).splitlines()[0])[:160]


def _evidence(failure: BaseException, case: Any, auth: dict[str, str]) -> str:
    message = re.sub(r"\s+", " ", getattr(failure, "message", "") or str(failure))[:400]
    return f"{message}\n    {case.as_curl_command(headers=auth)}"
