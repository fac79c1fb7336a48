"""The plan of a database restore: which database is created or replaced, what is recreated.

Nothing existing is replaced without `overwrite` (SPEC §7: explicit, after a plan that shows
what will be replaced). The plan has the shape of restore/plan.py's, plus a "database" part.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from backupmanager.databases import mysql, pg_memberships, postgresql
from backupmanager.databases.common import (
    DATABASE_NAME_PATTERN,
    Contents,
    DatabaseError,
    Endpoint,
)
from backupmanager.databases.reader import (
    DumpArchive,
    DumpArchiveError,
    open_dump_archive,
)
from backupmanager.db import Database
from backupmanager.jobs.db_config import DatabaseJobConfig
from backupmanager.models import Job
from backupmanager.restore.plan import RestoreOptions
from backupmanager.restore.refusals import CLI, database_exists, wording
from backupmanager.secret_store import SecretError
from backupmanager.settings import Settings


class DatabaseRestoreRefused(Exception):
    """The restore cannot start as asked: nothing was changed."""


@dataclass
class Target:
    archive: DumpArchive
    name: str  # the database restored into
    client: Any  # MysqlClient | PostgresClient
    exists: bool
    existing_tables: int

    @property
    def engine(self) -> str:
        return self.archive.engine

    @property
    def module(self) -> Any:
        return mysql if self.engine == "mysql" else postgresql


def _endpoint(db: Database | None, settings: Settings, archive: DumpArchive) -> Endpoint:
    """The local server (as root / postgres), or the remote one the archive came from, with
    its job's credentials."""
    host = archive.meta.get("host")
    if host is None:
        return Endpoint()
    job_config = _job_config(db, settings, archive)
    if job_config is None:
        raise DatabaseRestoreRefused(
            f"the archive comes from {host}; its job (with the credentials to restore there) "
            "no longer exists on this instance: recreate the job, then restore"
        )
    try:
        return job_config.endpoint(settings)
    except SecretError as error:
        raise DatabaseRestoreRefused(str(error)) from None


def _job_config(
    db: Database | None, settings: Settings, archive: DumpArchive
) -> DatabaseJobConfig | None:
    job_id = archive.backup_info.get("job_id")
    owned = db is None
    database = db or Database(settings)
    try:
        with database.read() as session:
            job = session.get(Job, job_id) if isinstance(job_id, int) else None
            if job is None or job.type != archive.engine:
                job = session.scalar(
                    select(Job).where(Job.name == archive.backup_info.get("job_name"))
                )
            if job is None or job.type != archive.engine:
                return None
            return DatabaseJobConfig.model_validate(json.loads(job.config_json))
    finally:
        if owned:
            database.dispose()


def resolve_target(
    db: Database | None, settings: Settings, path: Path, options: RestoreOptions, log: Any
) -> Target:
    try:
        archive = open_dump_archive(path)
    except DumpArchiveError as error:
        raise DatabaseRestoreRefused(str(error)) from None
    if options.target is not None:
        raise DatabaseRestoreRefused(
            "--target is for custom_dir archives: a database archive is restored into a "
            "database (--database NEW_NAME)"
        )
    name = options.database or archive.database
    if not DATABASE_NAME_PATTERN.match(name):
        raise DatabaseRestoreRefused(
            f"'{name}' is not a database name BackupManager creates: use 1 to 63 letters, "
            "digits, '_', '$' or '-'"
        )
    endpoint = _endpoint(db, settings, archive)
    client = (mysql.MysqlClient if archive.engine == "mysql" else postgresql.PostgresClient)(
        settings, endpoint, log=log
    )
    module = mysql if archive.engine == "mysql" else postgresql
    try:
        exists = module.database_exists(client, name)
        tables = module.table_count(client, name) if exists else 0
    except DatabaseError as error:
        raise DatabaseRestoreRefused(str(error)) from None
    return Target(archive, name, client, exists, tables)


def _accounts_actions(target: Target) -> list[str]:
    recorded = target.archive.accounts.get("accounts") or []
    if target.engine == "mysql":
        names = [f"{a['user']}@{a['host']}" for a in recorded if a.get("host") != "CURRENT_USER"]
        if not names:
            return ["no database user recorded (the job's user is root or a remote login)"]
        return [f"create the users that are missing among: {', '.join(names)}"]
    roles = [str(role["name"]) for role in recorded]
    memberships = [m.describe() for m in pg_memberships.recorded_memberships(recorded)]
    acl = target.archive.meta.get("facts", {}).get("acl")
    action = f"create the roles that are missing among: {', '.join(roles) or 'none'}"
    if memberships:  # none in archives written before memberships were recorded
        action += f"; grant the memberships that are missing among: {', '.join(memberships)}"
    if acl:
        action += "; apply the database's own privileges"
    return [action]


def make_plan(target: Target, archive_name: str, options: RestoreOptions) -> dict[str, Any]:
    """The plan in the shape of restore/plan.py's, plus a "database" section."""
    archive, meta = target.archive, target.archive.meta
    recorded = archive.recorded_contents or Contents({}, [])
    what = f"{archive.engine} database {target.name}"
    steps: list[dict[str, str]] = []
    if target.exists and target.engine == "mysql":
        steps.append(
            {"step": "verify", "action": "read the whole archive (SHA256, compression, length)"}
        )
        steps.append(
            {
                "step": "replace",
                "action": f"DROP the existing database {target.name} "
                f"({target.existing_tables} tables)",
            }
        )
    if not options.drill:
        steps.append({"step": "accounts", "action": "; ".join(_accounts_actions(target))})
    into = (
        f"a staging copy of {target.name}" if target.exists and target.engine != "mysql" else what
    )
    steps.append({"step": "database", "action": f"create {into}"})
    tool = "mysql" if target.engine == "mysql" else "pg_restore (one transaction)"
    steps.append(
        {
            "step": "load",
            "action": f"load {meta['dump_bytes']} bytes of dump with {tool}, verifying the "
            "archive's checksums as it streams",
        }
    )
    if target.engine == "mysql" and not options.drill:
        accounts = target.archive.accounts.get("accounts") or []
        count = sum(len(account.get("grants") or []) for account in accounts)
        steps.append(
            {"step": "grants", "action": f"give the {count} recorded grant(s) on {target.name}"}
        )
    steps.append(
        {
            "step": "compare",
            "action": f"compare with the dump: {len(recorded.tables)} tables, "
            f"{sum(recorded.tables.values())} rows, {len(recorded.views)} views",
        }
    )
    if target.exists and target.engine != "mysql":
        steps.append(
            {
                "step": "replace",
                "action": f"DROP the existing database {target.name} "
                f"({target.existing_tables} tables) and put the checked copy in its place",
            }
        )
    if options.drill:
        steps.append({"step": "drop", "action": f"drop the throw-away database {target.name}"})
    reason = None
    if target.exists and not options.overwrite:
        reason = database_exists(target.name, target.existing_tables)
    origin = f"{archive.engine} database {archive.database}"
    return {
        "archive": archive_name,
        "to_origin": target.name == archive.database,
        "target": what,
        "paths": [{"origin": origin, "restore_to": what}],
        "files": {
            "entries": 0,
            "files": 0,
            "bytes": 0,
            "overwrite": 0,
            "overwrite_examples": [],
            "create": 0,
        },
        "steps": steps,
        "commands": [],
        "commands_blocked": None,
        "refusal": wording(reason, CLI) if reason else None,
        "refusal_reason": reason,
        "database": {
            "engine": archive.engine,
            "source": archive.database,
            "target": target.name,
            "exists": target.exists,
            "existing_tables": target.existing_tables,
            "tables": len(recorded.tables),
            "rows": sum(recorded.tables.values()),
            "views": len(recorded.views),
            "dump_bytes": meta["dump_bytes"],
            "drill": options.drill,
        },
    }


def plan_for(settings: Settings, name: str, path: Path, options: RestoreOptions) -> dict[str, Any]:
    """The plan for restore/service.py (CLI, API, dashboard), reading headers only."""
    return make_plan(
        resolve_target(None, settings, path, options, lambda _line: None), name, options
    )
