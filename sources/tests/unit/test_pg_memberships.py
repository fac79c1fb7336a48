"""PostgreSQL role memberships: read from an archive's roles, which GRANTs are missing, quoting."""

from __future__ import annotations

from backupmanager.databases.pg_memberships import (
    Membership,
    missing_memberships,
    recorded_memberships,
)


def test_recorded_memberships_and_the_old_format_without_them() -> None:
    recorded = [
        {"name": "app", "member_of": [{"role": "readers", "admin_option": False}]},
        {"name": "writers", "member_of": [{"role": "base", "admin_option": True}]},
        {"name": "old_style_role", "login": True},  # archives written before memberships
    ]
    assert recorded_memberships(recorded) == [
        Membership("readers", "app", False),
        Membership("base", "writers", True),
    ]
    assert recorded_memberships([{"name": "app"}, {"name": "x", "member_of": None}]) == []


def test_only_what_is_missing_is_granted_and_nothing_is_revoked() -> None:
    wanted = [
        Membership("readers", "app", False),  # already there: nothing to do
        Membership("writers", "app", True),  # there without the admin option: GRANT adds it
        Membership("base", "writers", False),  # absent
        Membership("admins", "app", False),  # there with more (admin): left as it is
    ]
    existing = [
        Membership("readers", "app", False),
        Membership("writers", "app", False),
        Membership("admins", "app", False),  # PostgreSQL 16: one row per grantor
        Membership("admins", "app", True),
        Membership("other", "app", False),  # not recorded: stays
    ]
    assert missing_memberships(wanted, existing) == [
        Membership("writers", "app", True),
        Membership("base", "writers", False),
    ]


def test_grant_statements_quote_names() -> None:
    assert Membership('we"ird', "app", True).statement() == (
        'GRANT "we""ird" TO "app" WITH ADMIN OPTION;'
    )
    assert Membership("readers", "Ap p", False).statement() == 'GRANT "readers" TO "Ap p";'
    assert Membership("readers", "app", True).describe() == "readers to app with admin option"
