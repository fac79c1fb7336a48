"""The service layer shared by the CLI, the web dashboard and the API: jobs, runs, archives."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backupmanager import archive as archive_format
from backupmanager import commands, cron
from backupmanager.db import Database
from backupmanager.jobs import JobConfigError, get_kind, parse_config
from backupmanager.models import (
    COMMAND_QUEUED,
    COMMAND_RUNNING,
    RUN_QUEUED,
    RUN_RUNNING,
    Archive,
    Command,
    Job,
    Run,
    WorkerState,
)
from backupmanager.retention import RetentionPolicy, RetentionPolicyError
from backupmanager.settings import Settings
from backupmanager.validation import describe

# A worker that has not said it is alive for this long is considered stopped.
WORKER_STALE_AFTER = timedelta(seconds=30)
JOB_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")


class InputError(ValueError):
    """Bad input from a person or a script: the message says which field and what to do."""


class NotFound(LookupError):
    """The job, run or archive asked for does not exist."""


class JobInput(BaseModel):
    """One schema for a job, whether it comes from the CLI, a form or the API."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: str
    config: dict[str, Any] = Field(default_factory=dict)
    cron: str
    retention: str = "count:7"
    enabled: bool = True
    core_only: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not JOB_NAME_PATTERN.match(value):
            raise ValueError(
                "use 1 to 64 letters, digits, spaces, '.', '_' or '-' (no ':' or '/'), "
                "starting with a letter or digit"
            )
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return cron.validate(value)

    @field_validator("retention")
    @classmethod
    def _retention(cls, value: str) -> str:
        mode, _, amount = value.partition(":")
        policy = RetentionPolicy.parse(mode.strip(), amount.strip())
        return f"{policy.mode}:{policy.as_value()}"


def _input_error(error: ValidationError) -> InputError:
    return InputError(describe(error))


def validate_job_input(
    raw: dict[str, Any], settings: Settings, *, check_server: bool = True
) -> JobInput:
    """Validate everything, including the kind's config and (optionally) the server's state."""
    try:
        job_input = JobInput.model_validate(raw)
    except ValidationError as error:
        raise _input_error(error) from None
    except (cron.CronError, RetentionPolicyError) as error:
        raise InputError(str(error)) from None
    try:
        kind = get_kind(job_input.type)
        config_raw = dict(job_input.config)
        if job_input.type == "ynh_app":
            config_raw["core_only"] = job_input.core_only or bool(config_raw.get("core_only"))
        config = parse_config(kind, config_raw)
        if check_server:
            kind.check(config, settings)
    except JobConfigError as error:
        raise InputError(
            f"config: {error}" if "unknown job type" not in str(error) else str(error)
        ) from None
    job_input.config = config.model_dump()
    if job_input.type == "ynh_app":
        job_input.core_only = bool(job_input.config["core_only"])
    return job_input


def _apply(job: Job, job_input: JobInput) -> None:
    mode, _, value = job_input.retention.partition(":")
    job.name = job_input.name
    job.type = job_input.type
    job.config_json = json.dumps(job_input.config, sort_keys=True)
    job.cron_expr = job_input.cron
    job.retention_mode = mode
    job.retention_value = value
    job.enabled = job_input.enabled
    job.core_only = job_input.core_only


def job_as_input(job: Job) -> dict[str, Any]:
    return {
        "name": job.name,
        "type": job.type,
        "config": json.loads(job.config_json),
        "cron": job.cron_expr,
        "retention": f"{job.retention_mode}:{job.retention_value}",
        "enabled": job.enabled,
        "core_only": job.core_only,
    }


def create_job(
    db: Database, settings: Settings, raw: dict[str, Any], *, check_server: bool = True
) -> Job:
    """check_server=False: the caller (the unprivileged web process) checked the cached catalog."""
    job_input = validate_job_input(raw, settings, check_server=check_server)
    with db.write() as session:
        if session.scalar(select(Job.id).where(Job.name == job_input.name)) is not None:
            raise InputError(f"name: a job called '{job_input.name}' already exists")
        job = Job()
        _apply(job, job_input)
        session.add(job)
        session.flush()
        session.refresh(job)
        return job


def update_job(
    db: Database,
    settings: Settings,
    job_id: int,
    changes: dict[str, Any],
    *,
    check_server: bool = True,
) -> Job:
    with db.read() as session:
        current = job_as_input(get_job(session, job_id))
    job_input = validate_job_input({**current, **changes}, settings, check_server=check_server)
    with db.write() as session:
        job = get_job(session, job_id)
        clash = session.scalar(select(Job.id).where(Job.name == job_input.name, Job.id != job_id))
        if clash is not None:
            raise InputError(f"name: a job called '{job_input.name}' already exists")
        _apply(job, job_input)
        session.flush()
        session.refresh(job)
        return job


def set_enabled(db: Database, job_id: int, enabled: bool) -> Job:
    with db.write() as session:
        job = get_job(session, job_id)
        job.enabled = enabled
        session.flush()
        session.refresh(job)
        return job


def delete_job(db: Database, job_id: int) -> None:
    """Delete the job and its run history; its archives stay on disk and in the index."""
    with db.write() as session:
        job = get_job(session, job_id)
        if (
            session.scalar(select(Run.id).where(Run.job_id == job_id, Run.status == RUN_RUNNING))
            is not None
        ):
            raise InputError("this job is running: wait for the run to finish, then delete it")
        session.delete(job)


def get_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"there is no job {job_id} (see 'backupmanager jobs list')")
    return job


def get_run(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"there is no run {run_id} (see 'backupmanager runs list')")
    return run


@dataclass(frozen=True)
class QueuedRun:
    run_id: int
    created: bool  # False: the job was already queued or running, this is that run


def queue_run(
    db: Database, job_id: int, *, trigger: str, requested_by: str, now: datetime
) -> QueuedRun:
    """Queue a run of the job, unless one is already queued or running (one run at a time)."""
    with db.write() as session:
        get_job(session, job_id)
        active = session.scalar(
            select(Run.id).where(Run.job_id == job_id, Run.status.in_((RUN_QUEUED, RUN_RUNNING)))
        )
        if active is not None:
            return QueuedRun(active, False)
        run = Run(job_id=job_id, status=RUN_QUEUED, trigger=trigger, queued_at=now)
        session.add(run)
        session.flush()
        commands.enqueue(
            session,
            "run_job",
            now=now,
            requested_by=requested_by,
            payload={"job_id": job_id},
            run_id=run.id,
        )
        return QueuedRun(run.id, True)


def worker_alive(session: Session, now: datetime) -> bool:
    state = session.get(WorkerState, 1)
    return state is not None and now - state.heartbeat_at < WORKER_STALE_AFTER


def run_counts_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(Run.status, func.count()).group_by(Run.status)).all()
    return {status: count for status, count in rows}


def get_archive(session: Session, name: str) -> Archive:
    try:
        archive_format.validate_archive_name(name)
    except archive_format.ArchiveError as error:
        raise InputError(f"name: {error}") from None
    row = session.scalar(select(Archive).where(Archive.name == name))
    if row is None:
        raise NotFound(f"there is no archive named '{name}' (see 'backupmanager archives list')")
    return row


def queue_archive_deletion(db: Database, name: str, *, requested_by: str, now: datetime) -> int:
    """Queue the deletion of an indexed archive for the worker; returns the command id.

    The web process never deletes files itself (DESIGN §1). A deletion already waiting for the
    same archive is returned instead of queueing a second one.
    """
    with db.write() as session:
        get_archive(session, name)
        for command in session.scalars(
            select(Command).where(
                Command.kind == "delete_archive",
                Command.status.in_((COMMAND_QUEUED, COMMAND_RUNNING)),
            )
        ):
            if json.loads(command.payload_json).get("name") == name:
                return command.id
        command = commands.enqueue(
            session, "delete_archive", now=now, requested_by=requested_by, payload={"name": name}
        )
        return command.id


def delete_archive_now(db: Database, settings: Settings, name: str) -> str:
    """Delete an archive here (worker or root CLI); returns "" or what went wrong.

    Our own archives are removed with their .info.json; YunoHost's go through `yunohost backup
    delete`, so that its hooks run. The index is brought in step afterwards either way.
    """
    from backupmanager import process, yunohost
    from backupmanager.index import ORIGIN_LOCAL, sync_index

    with db.write() as session:
        sync_index(session, settings.archives_dir, settings.instance_name)
    with db.read() as session:
        try:
            row = get_archive(session, name)
        except (InputError, NotFound) as missing:
            return str(missing)
    error = ""
    if row.origin == ORIGIN_LOCAL:
        archive_format.remove_archive_files(settings.archives_dir, name)
    else:
        try:
            process.run(yunohost.delete_argv(settings.programs.yunohost, name), timeout=600)
        except process.ProcessError as failure:
            error = f"YunoHost could not delete {name}: {failure}"
    with db.write() as session:
        sync_index(session, settings.archives_dir, settings.instance_name)
    return error
