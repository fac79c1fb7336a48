"""PostgreSQL role memberships against the real server: recorded, given back, shown in the plan."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from backupmanager.app import create_app
from backupmanager.commands import run_inline_command
from backupmanager.databases.layout import accounts_member
from backupmanager.databases.reader import open_dump_archive
from backupmanager.db import Database
from backupmanager.models import Archive, Command
from backupmanager.restore.plan import RestoreOptions
from backupmanager.settings import Settings
from tests.helpers import add_job, restore_now, run_cli, run_job_now
from tests.integration.db_support import SKIP_REASON, login_works, pg_admin, unique


@dataclass
class AppRoles:
    """A database as apps set it up: tables granted to group roles, the login user a member."""

    database: str
    password: str
    extra_databases: list[str]

    @property
    def owner(self) -> str:  # owns the objects, so the app's rights come from its groups only
        return f"{self.database}_own"

    @property
    def app(self) -> str:  # the job's user: LOGIN, member of readers, admin of writers
        return f"{self.database}_app"

    @property
    def readers(self) -> str:  # SELECT on items
        return f"{self.database}_rd"

    @property
    def writers(self) -> str:  # INSERT on items
        return f"{self.database}_wr"

    @property
    def base(self) -> str:  # named by no object: recorded only as a group of writers
        return f"{self.database}_base"

    @property
    def roles(self) -> tuple[str, ...]:
        return (self.app, self.readers, self.writers, self.base, self.owner)

    def drop_everything(self) -> None:
        for name in [self.database, *self.extra_databases]:
            pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')
        pg_admin(f"DROP ROLE IF EXISTS {', '.join(self.roles)};")


@pytest.fixture
def app_roles() -> Iterator[AppRoles]:
    if SKIP_REASON:
        pytest.skip(SKIP_REASON)
    setup = AppRoles(unique("bmt"), "app-pass-" + unique("pw"), [])
    pg_admin(
        f"CREATE ROLE {setup.owner} NOLOGIN;\n"
        f"CREATE ROLE {setup.app} LOGIN PASSWORD '{setup.password}';\n"
        f"CREATE ROLE {setup.readers} NOLOGIN;\n"
        f"CREATE ROLE {setup.writers} NOLOGIN;\n"
        f"CREATE ROLE {setup.base} NOLOGIN;\n"
        f"CREATE DATABASE {setup.database} OWNER {setup.owner};\n"
        f"GRANT {setup.readers} TO {setup.app};\n"
        f"GRANT {setup.writers} TO {setup.app} WITH ADMIN OPTION;\n"
        f"GRANT {setup.base} TO {setup.writers};\n"
    )
    pg_admin(
        f"SET ROLE {setup.owner};\n"
        "CREATE TABLE items (id int PRIMARY KEY, name text);\n"
        "INSERT INTO items SELECT g, 'row ' || g FROM generate_series(1, 20) g;\n"
        f"GRANT SELECT ON items TO {setup.readers};\n"
        f"GRANT INSERT ON items TO {setup.writers};\n"
        "RESET ROLE;\n",
        database=setup.database,
    )
    yield setup
    setup.drop_everything()


def memberships_of(role: str) -> dict[str, bool]:
    """Group role → admin option, as the server has them now."""
    answer = pg_admin(
        "SELECT pg_get_userbyid(m.roleid) || ' ' || m.admin_option FROM pg_auth_members m "
        f"JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = '{role}';"
    )
    return {line.split()[0]: line.split()[1] == "true" for line in answer.splitlines() if line}


def can_login(role: str) -> str:
    """'t' or 'f', or '' when the role does not exist."""
    return pg_admin(f"SELECT rolcanlogin FROM pg_roles WHERE rolname = '{role}';").strip()


def back_up(db: Database, settings: Settings, setup: AppRoles) -> str:
    config = {"database": setup.database, "user": setup.app}
    job_id = add_job(db, settings, name=unique("db job"), type="postgresql", config=config)
    run = run_job_now(db, settings, job_id)
    assert run.status == "success", run.log_text
    assert run.archive_name is not None
    return run.archive_name


def lose_everything(setup: AppRoles) -> None:
    """The database, the user and its groups are gone: a fresh server."""
    setup.drop_everything()
    assert all(can_login(role) == "" for role in setup.roles)


def assert_app_works_again(setup: AppRoles, database: str) -> None:
    assert can_login(setup.readers) == "f" and can_login(setup.base) == "f"
    assert memberships_of(setup.app) == {setup.readers: False, setup.writers: True}
    assert memberships_of(setup.writers) == {setup.base: False}
    # The app logs in with its password and reads the table through its group.
    assert login_works("postgresql", setup.app, setup.password, database)
    inserted = pg_admin(
        f"SET ROLE {setup.app}; INSERT INTO items VALUES (1000, 'new') RETURNING id;",
        database=database,
    )
    assert inserted.strip() == "1000"


@pytest.mark.parametrize("into_new_name", [False, True])
def test_memberships_are_recorded_and_given_back_on_a_fresh_server(
    db: Database, settings: Settings, app_roles: AppRoles, into_new_name: bool
) -> None:
    setup = app_roles
    archive = back_up(db, settings, setup)
    recorded = open_dump_archive(settings.archives_dir / f"{archive}.tar").accounts["accounts"]
    by_name = {role["name"]: role for role in recorded}
    assert by_name[setup.app]["member_of"] == [
        {"role": setup.readers, "admin_option": False},
        {"role": setup.writers, "admin_option": True},
    ]
    assert by_name[setup.writers]["member_of"] == [{"role": setup.base, "admin_option": False}]
    assert by_name[setup.base]["login"] is False  # recorded although no object names it

    lose_everything(setup)
    target = setup.database
    if into_new_name:
        target = unique("bmt_copy")
        setup.extra_databases.append(target)
    status = restore_now(db, settings, archive, RestoreOptions(database=target))
    assert status["status"] == "success", status["log"]
    accounts = next(step for step in status["steps"] if step["step"] == "accounts")
    assert f"granted {setup.writers} to {setup.app} with admin option" in accounts["detail"]
    assert_app_works_again(setup, target)


def test_the_cli_and_dashboard_plans_list_the_memberships(
    db: Database, settings: Settings, app_roles: AppRoles, cli_env: dict[str, str]
) -> None:
    setup = app_roles
    archive = back_up(db, settings, setup)
    lose_everything(setup)
    expected = (
        "grant the memberships that are missing among: "
        f"{setup.readers} to {setup.app}, {setup.writers} to {setup.app} with admin option, "
        f"{setup.base} to {setup.writers}"
    )
    shown = run_cli(cli_env, "restore", archive, "--plan", timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert expected in shown.stdout

    client = create_app(settings, dev_mode=True).test_client()
    form_page = f"/archives/{archive}/restore"
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(form_page).data.decode())
    assert token is not None
    asked = client.post(form_page, data={"csrf_token": token[1]})
    assert asked.status_code == 302
    plan_id = re.search(r"plan=(\d+)", asked.headers["Location"])
    assert plan_id is not None
    with db.read() as session:
        command_id = session.scalars(
            select(Command.id).where(Command.kind == "restore", Command.status == "queued")
        ).one()
    assert run_inline_command(db, settings, command_id)  # the worker computes the plan
    page = client.get(f"/restores/{plan_id[1]}/plan").data.decode()
    assert expected in page
    assert memberships_of(setup.app) == {}  # a plan changes nothing


def without_memberships(tar_path: Path, database: str, dropped_role: str) -> None:
    """Rewrite the archive as versions before memberships wrote it: no `member_of`, and only
    the roles the objects name (not `dropped_role`, a group reached through memberships)."""
    name = accounts_member("postgresql", database)
    copy = tar_path.with_suffix(".old-format")
    with (
        tarfile.open(tar_path, "r:") as source,
        tarfile.open(copy, "w:", format=tarfile.GNU_FORMAT) as out,
    ):
        for member in source:
            data = source.extractfile(member)
            if member.name != name:
                out.addfile(member, data)
                continue
            accounts = json.loads(data.read() if data else b"{}")
            accounts["accounts"] = [
                {key: value for key, value in role.items() if key != "member_of"}
                for role in accounts["accounts"]
                if role["name"] != dropped_role
            ]
            payload = json.dumps(accounts, indent=2).encode()
            member.size = len(payload)
            out.addfile(member, io.BytesIO(payload))
    copy.replace(tar_path)


def test_an_archive_without_memberships_still_restores(
    db: Database, settings: Settings, app_roles: AppRoles
) -> None:
    setup = app_roles
    archive = back_up(db, settings, setup)
    tar_path = settings.archives_dir / f"{archive}.tar"
    without_memberships(tar_path, setup.database, setup.base)
    with db.write() as session:  # the checksum the older version recorded for what it wrote
        row = session.scalars(select(Archive).where(Archive.name == archive)).one()
        row.sha256 = hashlib.sha256(tar_path.read_bytes()).hexdigest()
    assert "member_of" not in json.dumps(open_dump_archive(tar_path).accounts)

    lose_everything(setup)
    status = restore_now(db, settings, archive, RestoreOptions())
    assert status["status"] == "success", status["log"]
    accounts = next(step for step in status["plan"]["steps"] if step["step"] == "accounts")
    assert "memberships" not in accounts["action"]
    assert can_login(setup.app) == "t" and can_login(setup.readers) == "f"
    assert memberships_of(setup.app) == {}  # nothing recorded, nothing granted
    assert pg_admin("SELECT count(*) FROM items;", database=setup.database).strip() == "20"
