"""Every citybot table, one module per domain, all on ``storage.base.Base`` so Alembic sees them.

Importing this package puts every table on ``Base.metadata``; callers import the models from
here. Datetimes are timezone-aware UTC everywhere (``UtcDateTime``); JSON is JSON on SQLite and
JSONB on PostgreSQL. A new table goes in the module of its domain (or a new one, imported below),
followed by a migration (``python -m storage.migrate revision -m "..."``).

Example::

    from storage.models import Resident

    async with sessionmaker() as session, session.begin():
        session.add(Resident(locale="zu"))
"""

from __future__ import annotations

from storage.models.audit import AuditLog
from storage.models.broadcasts import Broadcast, BroadcastDelivery
from storage.models.canned_responses import CannedResponse
from storage.models.city import FilingAttempt, Open311Request, RequestStatusChange, TrackedRequest
from storage.models.digests import DigestRun, ReportDigest
from storage.models.early_warning import (
    BurstCounter,
    BurstDetectorState,
    IncidentSuggestion,
    incident_suggestion_reports,
)
from storage.models.equity import AggregateAnswer
from storage.models.incidents import Incident
from storage.models.messages import (
    ConversationState,
    HeldMessage,
    MessageLog,
    PendingReply,
    ProcessedMessage,
    UssdSession,
)
from storage.models.notifications import ResidentNotification
from storage.models.open_data import (
    open_data_cells,
    open_data_disparity,
    open_data_refresh,
    open_data_rollup,
)
from storage.models.reports import Submission, SubmissionOutbox
from storage.models.residents import Resident, ResidentAddress
from storage.models.staff import LoginThrottle, StaffAccount, StaffToken
from storage.models.subscriptions import Subscription
from storage.models.support import SupportMessage, SupportTicket

__all__ = [
    "AggregateAnswer",
    "AuditLog",
    "Broadcast",
    "BroadcastDelivery",
    "BurstCounter",
    "BurstDetectorState",
    "CannedResponse",
    "ConversationState",
    "DigestRun",
    "FilingAttempt",
    "HeldMessage",
    "Incident",
    "IncidentSuggestion",
    "LoginThrottle",
    "MessageLog",
    "Open311Request",
    "PendingReply",
    "ProcessedMessage",
    "ReportDigest",
    "RequestStatusChange",
    "Resident",
    "ResidentAddress",
    "ResidentNotification",
    "StaffAccount",
    "StaffToken",
    "Submission",
    "SubmissionOutbox",
    "Subscription",
    "SupportMessage",
    "SupportTicket",
    "TrackedRequest",
    "UssdSession",
    "incident_suggestion_reports",
    "open_data_cells",
    "open_data_disparity",
    "open_data_refresh",
    "open_data_rollup",
]
