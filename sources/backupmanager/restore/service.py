"""Restore service functions for the CLI, the API and the dashboard (no Flask here)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from backupmanager import commands
from backupmanager.archive import ArchiveError, read_member_json, validate_archive_name
from backupmanager.archive_writer import part_directory
from backupmanager.databases.reader import DATABASE_TYPES, archive_type
from backupmanager.db import Database
from backupmanager.jobs.custom_dir_hook import CUSTOM_PART
from backupmanager.models import RESTORE_QUEUED, RESTORE_RUNNING, Archive, Restore, as_dict
from backupmanager.restore.execute import RESTORABLE_TYPES, RestoreRefused, archive_file
from backupmanager.restore.plan import RestoreOptions, archive_target, make_plan
from backupmanager.restore.safety import UnsafeArchive, scan_archive
from backupmanager.settings import Settings

RESTORE_FIELDS = (
    "id",
    "archive_name",
    "status",
    "phase",
    "progress_bytes",
    "total_bytes",
    "error_message",
    "requested_by",
    "created_at",
    "started_at",
    "finished_at",
)


class RestoreInputError(ValueError):
    """Bad options for this archive (exit status 2 in the CLI)."""


def check_options(name: str, kind: str | None, options: RestoreOptions) -> None:
    """What can be said from the archive's kind alone: target, --database, restorable at all.

    Reads no file, so the web process (which cannot read the root-only archives folder) can
    refuse bad requests at once; the worker checks the archive itself before changing anything.
    """
    if options.target is not None and not options.target.startswith("/"):
        raise RestoreInputError(f"--target must be an absolute folder, not '{options.target}'")
    if options.database is not None and kind not in ("mysql", "postgresql"):
        raise RestoreInputError(
            f"--database only applies to MySQL / PostgreSQL archives; {name} is a {kind} archive"
        )
    if kind in DATABASE_TYPES:
        if options.target is not None:
            raise RestoreInputError(
                "--target is for custom_dir archives: a database archive is restored into a "
                "database (--database NEW_NAME)"
            )
        return
    if kind not in RESTORABLE_TYPES:
        raise RestoreRefused(
            f"{name} is a {kind or 'YunoHost'} archive: restore it with "
            f"`yunohost backup restore {name} --force` (BackupManager restores custom_dir "
            "archives for now)"
        )


def _kind_on_disk(settings: Settings, name: str) -> str | None:
    kind = (read_member_json(archive_file(settings, name), "backup_info.json") or {}).get("type")
    return str(kind) if kind else None


def plan_restore(settings: Settings, name: str, options: RestoreOptions) -> dict[str, Any]:
    """The plan, from the archive's headers (not its data): nothing is changed or hashed.

    Needs to read the archives folder (root). The restore itself checks everything again,
    with the checksum, before its first change.
    """
    check_options(name, _kind_on_disk(settings, name), options)
    path = archive_file(settings, name)
    if archive_type(path) in DATABASE_TYPES:
        from backupmanager.restore.database_plan import DatabaseRestoreRefused, plan_for

        try:
            return plan_for(settings, name, path, options)
        except DatabaseRestoreRefused as error:
            raise RestoreRefused(str(error)) from None
    scan = scan_archive(
        path, part_dir=part_directory(CUSTOM_PART), target=archive_target(options), verify=False
    )
    plan, _ = make_plan(settings, name, scan, options)
    return plan.as_dict()


def queue_restore(
    db: Database,
    settings: Settings,
    name: str,
    options: RestoreOptions,
    *,
    requested_by: str,
    now: datetime,
) -> int:
    """Queue a restore of the archive (one at a time per archive); returns the restore's id.

    Uses only the archive index, never the archive file: the web process calls this too.
    """
    try:
        validate_archive_name(name)
    except ArchiveError as error:
        raise RestoreRefused(str(error)) from None
    with db.read() as session:
        indexed = session.scalar(select(Archive).where(Archive.name == name))
    if indexed is None:
        raise RestoreRefused(f"there is no archive {name} in the index of {settings.archives_dir}")
    check_options(name, indexed.kind, options)
    with db.write() as session:
        active = session.scalar(
            select(Restore.id).where(
                Restore.archive_name == name,
                Restore.status.in_((RESTORE_QUEUED, RESTORE_RUNNING)),
            )
        )
        if active is not None:
            raise RestoreRefused(f"archive {name} is already being restored (restore {active})")
        return add_queued_restore(
            session,
            "restore",
            name,
            options,
            recorded_by=requested_by,
            requested_by=requested_by,
            payload={"archive_name": name},
            now=now,
        )


def add_queued_restore(
    session: Session,
    command: str,
    archive_name: str,
    options: RestoreOptions,
    *,
    recorded_by: str,
    requested_by: str,
    payload: dict[str, Any],
    now: datetime,
) -> int:
    """A queued restore (or drill) and the worker command that will run it; returns its id.

    recorded_by goes on the restore row (a drill's says "drill"), requested_by on the command.
    """
    row = Restore(
        archive_name=archive_name,
        status=RESTORE_QUEUED,
        options_json=json.dumps(options.as_dict()),
        requested_by=recorded_by,
        created_at=now,
    )
    session.add(row)
    session.flush()
    commands.enqueue(
        session, command, now=now, requested_by=requested_by, payload=payload, restore_id=row.id
    )
    return row.id


def restore_view(row: Restore, *, with_log: bool = False) -> dict[str, Any]:
    """SPEC §8 restore status: status, phase, progress, plan, steps done, error."""
    view = as_dict(row, RESTORE_FIELDS)
    view["options"] = json.loads(row.options_json or "{}")
    view["plan"] = json.loads(row.plan_json or "{}")
    view["steps"] = json.loads(row.steps_json or "[]")
    if with_log:
        view["log"] = row.log_text
    return view


def restore_status(db: Database, restore_id: int, *, with_log: bool = False) -> dict[str, Any]:
    with db.read() as session:
        row = session.get(Restore, restore_id)
        if row is None:
            raise LookupError(f"there is no restore {restore_id}")
        return restore_view(row, with_log=with_log)


def restore_log(db: Database, restore_id: int) -> str:
    """The restore's (or drill's) log so far, for clients that follow it."""
    return str(restore_status(db, restore_id, with_log=True)["log"])


def is_plan() -> ColumnElement[bool]:
    """Rows that only computed a plan ("Show the plan", `plan_only`): never listed as restores.

    Told apart by their options (a row of any age has them), so no column or migration is needed.
    """
    flag = func.json_extract(Restore.options_json, "$.plan_only")
    return func.coalesce(flag, 0) != 0


def plan_options(options: RestoreOptions) -> dict[str, Any]:
    """The options a plan was computed for, as the restore that follows it must repeat them."""
    return {**options.as_dict(), "plan_only": False}


def latest_restore_status(db: Database, name: str) -> dict[str, Any] | None:
    """`GET /api/v1/archives/<name>/restore/status`: the newest restore of that archive."""
    with db.read() as session:
        row = session.scalar(
            select(Restore)
            .where(Restore.archive_name == name, ~is_plan())
            .order_by(Restore.id.desc())
        )
        return None if row is None else restore_view(row)


__all__ = [
    "RestoreInputError",
    "RestoreOptions",
    "RestoreRefused",
    "UnsafeArchive",
    "add_queued_restore",
    "is_plan",
    "latest_restore_status",
    "plan_options",
    "plan_restore",
    "queue_restore",
    "restore_status",
    "restore_view",
]
