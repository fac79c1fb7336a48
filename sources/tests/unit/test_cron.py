"""Cron: standard day-of-week numbering on APScheduler 3, OR of both day fields, words."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from backupmanager import cron

PARIS = ZoneInfo("Europe/Paris")
SATURDAY = datetime(2026, 11, 21, 12, 0, tzinfo=PARIS)


def test_monday_means_monday() -> None:
    # APScheduler's from_crontab would read 1 as Tuesday (DESIGN §6).
    runs = cron.next_runs("0 3 * * 1", PARIS, SATURDAY, count=3)
    assert [run.strftime("%a %H:%M") for run in runs] == ["Mon 03:00"] * 3


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("5-7", "sun,fri,sat"),
        ("*/2", "sun,tue,thu,sat"),
        ("sat,sun", "sun,sat"),
        ("*", "*"),
    ],
)
def test_day_of_week_translation(field: str, expected: str) -> None:
    assert cron.day_of_week_for_apscheduler(field) == expected


def test_both_day_fields_are_or_ed_like_cron() -> None:
    # "the 1st of the month OR any Sunday" in standard cron.
    runs = cron.next_runs("0 3 1 * 0", PARIS, SATURDAY, count=3)
    assert [run.date().isoformat() for run in runs] == ["2026-11-22", "2026-11-29", "2026-12-01"]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 3 * *", "needs 5"),
        ("61 * * * *", "not a valid schedule"),
        ("0 3 * * 8", "not a day of the week"),
        ("0 3 * * 5-1", "must go forward"),
        ("every day", "needs 5"),
    ],
)
def test_bad_expressions_are_refused(expression: str, message: str) -> None:
    with pytest.raises(cron.CronError, match=message):
        cron.validate(expression)


def test_next_run_after_is_strictly_after() -> None:
    slot = datetime(2026, 11, 23, 3, 0, tzinfo=PARIS)
    assert cron.next_run_after("0 3 * * 1", PARIS, slot) == datetime(
        2026, 11, 30, 3, 0, tzinfo=PARIS
    )
    assert cron.next_run_after("0 3 * * 1", PARIS, slot.replace(hour=2)) == slot


def test_words() -> None:
    assert cron.describe("0 3 * * 1") == "At 03:00, only on Monday"
    assert cron.validate("  0  3 * *   1 ") == "0 3 * * 1"
    assert (
        cron.next_runs("*/15 * * * *", UTC, datetime(2026, 1, 1, tzinfo=UTC), count=2)[1].minute
        == 30
    )
