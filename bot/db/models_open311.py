"""Puts the Open311 and notifier tables on ``Base.metadata`` for Alembic (they live with their code).

``bot.db.migrate.import_model_modules`` imports every ``bot/db/models*.py``; this one brings in
``open311_requests`` and ``filing_attempts`` (bot/open311/models.py) and ``tracked_requests`` and
``request_status_changes`` (notifier/models.py).
"""

from __future__ import annotations

from bot.open311.models import FilingAttempt, Open311Request
from notifier.models import RequestStatusChange, TrackedRequest

__all__ = ["FilingAttempt", "Open311Request", "RequestStatusChange", "TrackedRequest"]
