"""``citybot check``: is this environment ready to run citybot? One line per check, with the fix.

Reads the environment as ``serve`` would, then asks the database (and how many migrations are
missing), Redis (and whether it keeps anything on disk), each provider account (read-only:
Telegram getMe, Twilio's account fetch) and the city's Open311 endpoint. Nothing is changed.
Exit status 0 when nothing failed (warnings allowed), 1 otherwise.

Example::

    $ citybot check
    ok   settings  every variable has a usable value
    ok   database  postgresql+asyncpg://citybot:***@db/citybot answers, schema up to date
    FAIL redis     cannot reach redis://cache:6379/0: ... -> is Redis running there? ...
    ok   telegram  bot @CapeTownCityBot
    ok   sms       account 'City of Cape Town' is active
    ok   city      https://city.example/open311/v2 answers with 42 service(s)
"""

from __future__ import annotations

import argparse
import asyncio
import os

from bot.channel_setup import check_channel_env
from bot.config import ConfigError, Settings
from bot.preflight import Finding, Outcome, check_everything

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        check_channel_env(os.environ)
    except ConfigError as exc:
        # Nothing can be asked with settings that cannot be read.
        print(Finding(Outcome.FAIL, "settings", str(exc)).line())
        return 1
    findings = asyncio.run(check_everything(settings, os.environ))
    for finding in findings:
        print(finding.line(), flush=True)
    return 1 if any(f.outcome is Outcome.FAIL for f in findings) else 0
