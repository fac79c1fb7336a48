"""Time sources: an injectable clock and the instance's time zone (no patching of datetime in tests)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

import tzlocal

from backupmanager.settings import Settings

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def instance_timezone(settings: Settings) -> tzinfo:
    """The zone archive dates and calendar days are counted in: the setting, else the server's."""
    if settings.timezone:
        return ZoneInfo(settings.timezone)
    zone: tzinfo = tzlocal.get_localzone()
    return zone
