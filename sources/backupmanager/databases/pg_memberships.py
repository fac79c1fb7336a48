"""PostgreSQL role memberships (`GRANT app_readers TO app`): recorded at backup, given back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backupmanager.databases.postgresql import PostgresClient, ident

# PostgreSQL 16 keeps one row per grantor: a membership has the admin option if any row has it.
MEMBERSHIPS_SQL = """
SELECT COALESCE(json_agg(json_build_object('role', pg_get_userbyid(roleid),
  'member', pg_get_userbyid(member), 'admin_option', admin_option)), '[]')::text
FROM pg_auth_members;
"""


@dataclass(frozen=True)
class Membership:
    """`GRANT role TO member [WITH ADMIN OPTION]`, as recorded in an archive."""

    role: str
    member: str
    admin_option: bool

    def describe(self) -> str:
        return f"{self.role} to {self.member}" + (" with admin option" if self.admin_option else "")

    def statement(self) -> str:
        option = " WITH ADMIN OPTION" if self.admin_option else ""
        return f"GRANT {ident(self.role)} TO {ident(self.member)}{option};"


def recorded_memberships(recorded: list[Any]) -> list[Membership]:
    """Every recorded role's memberships; archives written before they were recorded have none."""
    return [
        Membership(str(group["role"]), str(role["name"]), bool(group.get("admin_option")))
        for role in recorded
        for group in role.get("member_of") or []
    ]


def missing_memberships(wanted: list[Membership], existing: list[Membership]) -> list[Membership]:
    """What a GRANT must add: absent memberships, or present without a recorded admin option.
    Nothing is ever revoked: memberships given on this server since stay."""
    admin_here: dict[tuple[str, str], bool] = {}
    for found in existing:
        key = (found.role, found.member)
        admin_here[key] = admin_here.get(key, False) or found.admin_option

    def lacking(membership: Membership) -> bool:
        here = admin_here.get((membership.role, membership.member))
        return here is None or (membership.admin_option and not here)

    return [membership for membership in wanted if lacking(membership)]


def grant_memberships(client: PostgresClient, recorded: list[Any]) -> list[str]:
    """After the roles exist: give back the recorded memberships this server lacks."""
    wanted = recorded_memberships(recorded)
    if not wanted:
        return []
    found = client.query_json(MEMBERSHIPS_SQL) or []
    existing = [
        Membership(str(row["role"]), str(row["member"]), bool(row["admin_option"])) for row in found
    ]
    missing = missing_memberships(wanted, existing)
    if missing:
        client.psql("\n".join(membership.statement() for membership in missing))
    return [f"granted {membership.describe()}" for membership in missing]
