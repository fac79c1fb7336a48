"""Restores of mysql / postgresql archives (SPEC §7 "MySQL / PostgreSQL") and restore drills.

Steps, in order: accounts (users/roles missing here, recorded grants, PostgreSQL's role
memberships), database (created with the recorded character set or encoding), load (mysql or
pg_restore fed from the archive, checksums verified as it streams), compare (tables and row
counts against the dump's). An existing MariaDB database is dropped only after a full
verification read of the archive; PostgreSQL loads into a staging database in one transaction,
and the staging database replaces the existing one only once loaded, verified and compared. A
database this restore created and could not fill is dropped again: never a half database under
a real name. A drill restores into a throw-away database, compares, and drops it whatever
happens.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from backupmanager import process
from backupmanager.databases import mysql, pg_memberships, postgresql
from backupmanager.databases.common import DatabaseError, compare_contents
from backupmanager.databases.reader import DumpArchiveError, dump_blocks
from backupmanager.db import Database
from backupmanager.errors import N_
from backupmanager.restore.database_plan import (
    DatabaseRestoreRefused,
    Target,
    make_plan,
    resolve_target,
)
from backupmanager.restore.plan import RestoreOptions
from backupmanager.restore.refusals import refusal_text
from backupmanager.restore.steps import StepFailed
from backupmanager.runlog import RunLog
from backupmanager.settings import Settings

# The compare step's outcome, shown translated on the dashboard (web/known_messages.py).
NOTHING_TO_COMPARE = N_("the archive records no row counts: nothing to compare")
AS_IN_DUMP = N_("{tables} tables, {rows} rows and {views} views, as in the dump")
DIFFERS_FROM_DUMP = N_("the restored database differs from the dump: {problems}")


class RestoreRun(Protocol):
    """What restore/execute.py's RestoreExecution offers to this module."""

    db: Database
    settings: Settings
    log: RunLog
    face: str  # where the restore was asked from, for the words of a refusal (refusals.py)

    def progress(self, done: int, total: int | None) -> None: ...
    def begin_step(self, step: str) -> None: ...
    def record_step(self, step: str, detail: str) -> None: ...
    def save_plan(self, plan: dict[str, Any], total_bytes: int) -> None: ...


def restore_database(
    run: RestoreRun, name: str, path: Path, options: RestoreOptions, expected_sha256: str | None
) -> str:
    """Plan, then the steps; returns the closing note. Raises DatabaseRestoreRefused before any
    change, StepFailed (naming the step through run.begin_step) after."""
    target = resolve_target(run.db, run.settings, path, options, run.log.line)
    plan = make_plan(target, name, options)
    run.save_plan(plan, int(target.archive.meta["dump_bytes"]))
    refusal = refusal_text(plan, run.face)
    if refusal:
        raise DatabaseRestoreRefused(refusal)
    if options.plan_only:
        return "Plan computed; nothing was changed."
    return _Steps(run, target, options, expected_sha256).run()


class _Steps:
    def __init__(
        self, run: RestoreRun, target: Target, options: RestoreOptions, expected: str | None
    ) -> None:
        self.run_, self.target, self.options, self.expected = run, target, options, expected
        self.client: Any = target.client
        self.module: Any = target.module
        self.size = target.archive.path.stat().st_size
        self.created: str | None = None  # a database this restore created (dropped on failure)

    def step(self, name: str, action: Callable[[], str]) -> None:
        self.run_.begin_step(name)
        try:
            detail = action()
        except (DatabaseError, DumpArchiveError) as error:
            raise StepFailed(str(error)) from None
        self.run_.record_step(name, detail)

    def run(self) -> str:
        target, drill = self.target, self.options.drill
        into = target.name
        if target.exists and target.engine == "postgresql":
            into = f"{target.name[:44]}_bm_staging_{secrets.token_hex(3)}"
        try:
            if target.exists and target.engine == "mysql":
                self.step("verify", self.verify)
                self.step("replace", self.drop_existing)
            if not drill:
                self.step("accounts", self.accounts)
            self.step("database", lambda: self.create(into))
            self.step("load", lambda: self.load(into))
            if target.engine == "mysql" and not drill:
                self.step("grants", lambda: self.grants(into))
            self.step("compare", lambda: self.compare(into))
            if into != target.name:
                self.step("replace", lambda: self.swap(into))
        except BaseException as error:
            self.clean_up(into, error)
            raise
        if drill:
            self.step("drop", lambda: self.drop(into))
            return f"Restore drill passed: the archive restores completely into {into} (dropped)."
        return f"Database {target.name} restored."

    def clean_up(self, into: str, error: BaseException) -> None:
        """Drop what this restore created and could not finish (a drill's database, always)."""
        compared = isinstance(error, StepFailed) and "differs from the dump" in str(error)
        if self.created is None or (compared and not self.options.drill):
            if compared:
                self.run_.log.line(f"The restored database {into} is kept for inspection.")
            return
        try:
            self.module.drop_database(self.client, into)
            self.run_.log.line(f"Dropped the incomplete database {into}.")
        except DatabaseError as drop_error:
            self.run_.log.line(f"Could not drop the incomplete database {into}: {drop_error}")

    def _blocks(self) -> Any:
        return dump_blocks(
            self.target.archive,
            expected_sha256=self.expected,
            progress=lambda done: self.run_.progress(done, self.size),
        )

    def verify(self) -> str:
        """Read the whole archive before anything is dropped (MariaDB cannot swap databases)."""
        total = sum(len(block) for block in self._blocks())
        checked = "SHA256 matches the one recorded" if self.expected else "no recorded SHA256"
        return f"archive verified: {total} bytes of dump, compression checksum and length OK, {checked}"

    def drop_existing(self) -> str:
        self.module.drop_database(self.client, self.target.name)
        return f"dropped the existing database {self.target.name}"

    def accounts(self) -> str:
        archive = self.target.archive
        recorded = archive.accounts.get("accounts") or []
        if self.target.engine == "mysql":
            done = mysql.create_accounts(self.client, recorded)
        else:
            done = postgresql.restore_roles(self.client, recorded)
            done += pg_memberships.grant_memberships(self.client, recorded)  # roles exist now
        return "; ".join(done) or "every recorded user already exists; nothing to create"

    def grants(self, into: str) -> str:
        archive = self.target.archive
        recorded = archive.accounts.get("accounts") or []
        done = mysql.apply_grants(self.client, recorded, archive.database, into)
        return ("granted " + "; ".join(done)) if done else "no grants recorded"

    def create(self, into: str) -> str:
        facts = dict(self.target.archive.meta.get("facts") or {})
        if self.target.engine == "mysql":
            mysql.create_database(self.client, into, facts)
            self.created = into
            return f"created {into} ({facts.get('charset')}, {facts.get('collation')})"
        owner = None if self.options.drill else facts.get("owner")
        postgresql.create_database(self.client, into, facts, owner=owner)
        self.created = into
        granted = 0
        if not self.options.drill:
            granted = postgresql.apply_database_acl(self.client, into, facts.get("acl"))
        return f"created {into} (owner {owner or 'postgres'}, {granted} database privileges)"

    def load(self, into: str) -> str:
        client, settings = self.client, self.run_.settings
        if self.target.engine == "mysql":
            program, args, extra = settings.programs.mysql, client.load_args(into), {}
        else:
            program = settings.programs.pg_restore
            args, extra = client.restore_args(drill=self.options.drill), {"database": into}
        blocks = self._blocks()
        with client.invocation(program, *args, **extra) as call:
            self.run_.log.line("$ " + " ".join(call.argv))
            try:
                process.feed(
                    call.argv,
                    source=blocks,
                    on_line=lambda _stream, line: self.run_.log.line(f"{program.name}: {line}"),
                    env=call.env,
                    cwd=call.cwd,
                    pass_fds=call.pass_fds,
                    secrets=call.secrets,
                    timeout=settings.run_timeout_seconds,
                )
            except process.ProcessError as error:
                raise client.failure(error, into) from None
        for _rest in blocks:  # the tool may stop reading at its format's end: verify the rest
            pass
        checked = "SHA256 matches the one recorded" if self.expected else "no recorded SHA256"
        return (
            f"loaded {self.target.archive.meta['dump_bytes']} bytes of dump into {into} ({checked})"
        )

    def compare(self, into: str) -> str:
        recorded = self.target.archive.recorded_contents
        if recorded is None:
            return NOTHING_TO_COMPARE
        restored = self.module.contents(self.client, into)
        problems = compare_contents(recorded, restored)
        if problems:
            shown = "; ".join(problems[:10]) + ("; …" if len(problems) > 10 else "")
            raise StepFailed(DIFFERS_FROM_DUMP.format(problems=shown))
        rows = sum(restored.tables.values())
        return AS_IN_DUMP.format(tables=len(restored.tables), rows=rows, views=len(restored.views))

    def swap(self, staging: str) -> str:
        postgresql.drop_database(self.client, self.target.name)
        postgresql.rename_database(self.client, staging, self.target.name)
        self.created = None
        return f"replaced the existing database {self.target.name} with the restored copy"

    def drop(self, into: str) -> str:
        self.module.drop_database(self.client, into)
        self.created = None
        return f"dropped the throw-away database {into}"
