"""Restore drills (issue 4): prove that a database job's newest archive restores completely.

A drill is a restore (a `restores` row, so its log, phases and progress show like any other
restore) of the job's newest archive into a throw-away database `bm_drill_<job>_<random>`,
with `drill` set: no users, roles or grants are touched, the tables and row counts are
compared with those recorded at dump time, and the database is dropped whatever happens.
The verdict goes on the job ("last proven restorable"), for the dashboard and the API.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from backupmanager.clock import Clock
from backupmanager.db import Database
from backupmanager.errors import N_
from backupmanager.index import ORIGIN_LOCAL
from backupmanager.models import (
    COMMAND_QUEUED,
    COMMAND_RUNNING,
    RESTORE_SUCCESS,
    Archive,
    Command,
    Job,
    Restore,
)
from backupmanager.restore.plan import RestoreOptions
from backupmanager.restore.service import add_queued_restore
from backupmanager.services import InputError, get_job
from backupmanager.settings import Settings

# The verdict recorded on the job, shown translated on the dashboard (web/known_messages.py).
DRILL_PASSED_IN = N_("{archive} restored into a throw-away database in {seconds} s: {compared}.")
DRILL_PASSED = N_("{archive} restored into a throw-away database: {compared}.")
DRILL_FAILED = N_("{archive} could not be restored: {error}")

DRILL_TYPES = ("mysql", "postgresql")
DRILL_PREFIX = "bm_drill_"
REQUESTED_BY = "drill"


def newest_archive(session: Any, job_id: int) -> Archive | None:
    archive: Archive | None = session.scalar(
        select(Archive)
        .where(Archive.job_id == job_id, Archive.origin == ORIGIN_LOCAL)
        .order_by(Archive.created_at.desc(), Archive.id.desc())
        .limit(1)
    )
    return archive


def _active_drill(session: Any, job_id: int) -> int | None:
    for command in session.scalars(
        select(Command).where(
            Command.kind == "drill", Command.status.in_((COMMAND_QUEUED, COMMAND_RUNNING))
        )
    ):
        if json.loads(command.payload_json).get("job_id") == job_id:
            return command.restore_id  # type: ignore[no-any-return]
    return None


def queue_drill(db: Database, job_id: int, *, requested_by: str, now: datetime) -> tuple[int, bool]:
    """Queue a drill of the job's newest archive: (restore id, created). One at a time per job."""
    with db.write() as session:
        job = get_job(session, job_id)
        if job.type not in DRILL_TYPES:
            raise InputError(
                f"restore drills are for mysql and postgresql jobs; job {job_id} is {job.type}"
            )
        active = _active_drill(session, job_id)
        if active is not None:
            return active, False
        archive = newest_archive(session, job_id)
        if archive is None:
            raise InputError(
                f"job {job_id} has no archive yet: run it first ('backupmanager jobs run {job_id}')"
            )
        options = RestoreOptions(
            database=f"{DRILL_PREFIX}{job_id}_{secrets.token_hex(4)}", drill=True
        )
        restore_id = add_queued_restore(
            session,
            "drill",
            archive.name,
            options,
            recorded_by=REQUESTED_BY,
            requested_by=requested_by,
            payload={"job_id": job_id, "archive_name": archive.name},
            now=now,
        )
        return restore_id, True


def verdict_message(restore: Restore, started: datetime | None) -> str:
    if restore.status == RESTORE_SUCCESS:
        compared = next(
            (
                step["detail"]
                for step in json.loads(restore.steps_json)
                if step["step"] == "compare"
            ),
            "",
        )
        if started is not None and restore.finished_at is not None:
            seconds = f"{(restore.finished_at - started).total_seconds():.0f}"
            return DRILL_PASSED_IN.format(
                archive=restore.archive_name, seconds=seconds, compared=compared
            )
        return DRILL_PASSED.format(archive=restore.archive_name, compared=compared)
    return DRILL_FAILED.format(archive=restore.archive_name, error=restore.error_message)


def drop_leftovers(db: Database, settings: Settings, job_id: int, keep: str) -> list[str]:
    """Throw-away databases of this job's earlier drills that a crash left behind."""
    from backupmanager.databases import mysql, postgresql
    from backupmanager.databases.common import DatabaseError
    from backupmanager.jobs.db_config import DatabaseJobConfig
    from backupmanager.jobs.db_dump import client_for
    from backupmanager.secret_store import SecretError

    with db.read() as session:
        job = get_job(session, job_id)
        engine, config = job.type, DatabaseJobConfig.model_validate(json.loads(job.config_json))
    module: Any = mysql if engine == "mysql" else postgresql
    dropped = []
    try:
        client = client_for(engine, settings, config, lambda _line: None)
        for name in module.list_databases(client):
            if name.startswith(f"{DRILL_PREFIX}{job_id}_") and name != keep:
                module.drop_database(client, name)
                dropped.append(name)
    except (DatabaseError, SecretError):
        pass  # the drill itself will say what is wrong with the server
    return dropped


def run_drill(
    db: Database, settings: Settings, command: Command, clock: Clock
) -> tuple[bool, dict[str, Any]]:
    """The `drill` command: the restore, then the verdict on the job."""
    from backupmanager.restore.execute import execute_restore

    assert command.restore_id is not None
    job_id = int(json.loads(command.payload_json)["job_id"])
    with db.read() as session:
        restore = session.get(Restore, command.restore_id)
        throw_away = json.loads(restore.options_json).get("database", "") if restore else ""
    drop_leftovers(db, settings, job_id, throw_away)
    status = execute_restore(db, settings, command.restore_id, clock=clock)
    with db.write() as session:
        restore = session.get(Restore, command.restore_id)
        assert restore is not None
        message = verdict_message(restore, restore.started_at)
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(
                last_drill_at=restore.finished_at or clock(),
                last_drill_status="success" if status == RESTORE_SUCCESS else "error",
                last_drill_message=message,
            )
        )
    return status == RESTORE_SUCCESS, {"status": status, "job_id": job_id, "message": message}


def drill_schedules(db: Database) -> list[tuple[int, str]]:
    """(job id, drill_cron) of the enabled database jobs that have one, for the scheduler."""
    with db.read() as session:
        rows = session.execute(
            select(Job.id, Job.config_json).where(Job.enabled.is_(True), Job.type.in_(DRILL_TYPES))
        ).all()
    schedules = []
    for job_id, config_json in rows:
        expression = json.loads(config_json).get("drill_cron")
        if expression:
            schedules.append((job_id, str(expression)))
    return schedules


def drill_view(job: Job) -> dict[str, Any]:
    """The verdict as shown by the CLI, the API and the dashboard."""
    return {
        "last_drill_at": job.last_drill_at.isoformat() if job.last_drill_at else None,
        "last_drill_status": job.last_drill_status,
        "last_drill_message": job.last_drill_message,
    }
