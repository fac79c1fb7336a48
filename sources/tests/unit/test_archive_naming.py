"""Archive names (SPEC §3, YUNOHOST.md §1.9): pattern, 50 characters, same-day suffix."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from backupmanager.archive import (
    ArchiveError,
    archive_base_name,
    choose_archive_name,
    validate_archive_name,
)

DAY = datetime(2026, 5, 8, 3, 0, 5, tzinfo=ZoneInfo("Europe/Paris"))


def test_spec_examples() -> None:
    assert archive_base_name("jerry", "nocodb", DAY) == "jerry_nocodb_20260508"
    assert archive_base_name("jerry", "system", DAY) == "jerry_system_20260508"
    assert archive_base_name("jerry", "hermes-agent", DAY) == "jerry_hermes-agent_20260508"
    assert archive_base_name("jerry", "mysql_mabase", DAY) == "jerry_mysql_mabase_20260508"


def test_same_day_gets_sortable_suffix() -> None:
    base = archive_base_name("jerry", "nocodb", DAY)
    first = choose_archive_name(base, DAY, set())
    second = choose_archive_name(base, DAY, {first})
    third = choose_archive_name(base, DAY, {first, second})
    later = choose_archive_name(base, DAY.replace(hour=14), {first, second, third})
    assert first == "jerry_nocodb_20260508"
    assert second == "jerry_nocodb_20260508-030005"
    assert third == "jerry_nocodb_20260508-030005-2"
    assert sorted([later, third, first, second]) == [first, second, third, later]


def test_long_names_are_shortened_predictably() -> None:
    long_app = "a-really-long-application-identifier-that-goes-on-and-on"
    base = archive_base_name("a-very-long-instance-name", long_app, DAY)
    assert base == archive_base_name("a-very-long-instance-name", long_app, DAY)
    worst = choose_archive_name(
        base, DAY, {base, f"{base}-030005"} | {f"{base}-030005-{n}" for n in range(2, 9)}
    )
    assert len(worst) <= 50
    validate_archive_name(worst)
    other = archive_base_name("a-very-long-instance-name", long_app + "-2", DAY)
    assert other != base  # the hash keeps two long names apart


def test_odd_characters_become_dashes() -> None:
    assert archive_base_name("jerry", "ma base:prod", DAY) == "jerry_ma-base-prod_20260508"


@pytest.mark.parametrize(
    "name", ["", "a" * 51, "ends.", "../etc", "a/b", ".hidden", "with space", ".."]
)
def test_bad_names_refused(name: str) -> None:
    with pytest.raises(ArchiveError):
        validate_archive_name(name)
