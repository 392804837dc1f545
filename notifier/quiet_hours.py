"""Quiet hours: the local times at which residents are not sent status updates.

Example::

    QuietHours(start=time(21), end=time(7)).contains(datetime.now(UTC))   # True at 23:00 local
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

__all__ = ["QuietHours"]


@dataclass(frozen=True, slots=True)
class QuietHours:
    """No status messages between ``start`` and ``end`` (local time in ``zone``); may span midnight."""

    start: time = time(21, 0)
    end: time = time(7, 0)
    zone: str = "Africa/Johannesburg"

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(ZoneInfo(self.zone)).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end
