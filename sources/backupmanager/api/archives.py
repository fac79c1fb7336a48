"""API routes for archives: list, info, deletion and restore (both queued for the worker)."""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

from flask import Response, url_for
from pydantic import Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backupmanager import archive as archive_format
from backupmanager import services, views
from backupmanager.api import caller, ok, route, state
from backupmanager.api.errors import ApiError
from backupmanager.api.inputs import MAX_ID, Body, Page, Strict, body, query
from backupmanager.api.jobs import page, progress
from backupmanager.clock import system_clock
from backupmanager.index import stored_info
from backupmanager.models import (
    RESTORE_QUEUED,
    RESTORE_RUNNING,
    Archive,
    Job,
    Restore,
)

RESTORE_FINISHED = ("success", "error", "interrupted")
MAX_LOG_LINES = 1000


class ArchivesQuery(Page):
    job_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    origin: str | None = Field(default=None, min_length=1, max_length=128)
    type: str | None = Field(default=None, min_length=1, max_length=32)
    app: str | None = Field(default=None, min_length=1, max_length=64)


class RestoreStatusQuery(Strict):
    log_lines: int = Field(default=50, ge=0, le=MAX_LOG_LINES)


class RestoreRequest(Body):
    """Options of a restore, as `backupmanager restore NAME [--target DIR] [--database NEW]`."""

    target: str | None = Field(default=None, min_length=1, max_length=4096)
    overwrite: bool = False
    skip_commands: bool = False
    plan_only: bool = False
    database: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]{1,64}$")

    @field_validator("target")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        # Where the files go is checked again by the restore engine (safety.py); here only the
        # shape: an absolute path, no NUL byte.
        if value is not None and ("\x00" in value or not PurePosixPath(value).is_absolute()):
            raise ValueError("must be an absolute path, e.g. /home/restored")
        return value


def checked_name(name: str) -> str:
    """Only names YunoHost accepts reach the database or the file system (no '/', no '..')."""
    try:
        return archive_format.validate_archive_name(name)
    except archive_format.ArchiveError as error:
        raise ApiError(400, str(error)) from None


def _archive_row(session: Session, name: str) -> Archive:
    row = session.scalar(select(Archive).where(Archive.name == checked_name(name)))
    if row is None:
        raise ApiError(404, f"there is no archive named '{name}' (see GET /api/v1/archives)")
    return row


@route("/v1/archives", ["GET"])
def list_archives() -> Response:
    """Newest first, from the index the worker keeps in step with the archives folder."""
    params = query(ArchivesQuery)
    conditions: list[Any] = []
    for column, value in (
        (Archive.job_id, params.job_id),
        (Archive.origin, params.origin),
        (Archive.kind, params.type),
        (Archive.app, params.app),
    ):
        if value is not None:
            conditions.append(column == value)
    with state().db.read() as session:
        total = session.scalar(select(func.count()).select_from(Archive).where(*conditions)) or 0
        rows = session.scalars(
            select(Archive)
            .where(*conditions)
            .order_by(Archive.created_at.desc(), Archive.name.desc())
            .limit(params.limit)
            .offset(params.offset)
        ).all()
        items = [views.archive_view(row) for row in rows]
    return ok(page(items, total, params))


@route("/v1/archives/<name>/info", ["GET"])
def archive_info(name: str) -> Response:
    query(Strict)
    api = state()
    with api.db.read() as session:
        row = _archive_row(session, name)
        view = views.archive_view(row)
        view["job_name"] = (
            session.scalar(select(Job.name).where(Job.id == row.job_id)) if row.job_id else None
        )
    view["path"] = str(api.settings.archives_dir / row.filename)
    # YunoHost's <name>.info.json (apps, system parts, sizes), when this process may read it.
    view["yunohost_info"] = stored_info(row)  # the web process cannot read the archives folder
    return ok(view)


def _active_restore(session: Session, name: str) -> Restore | None:
    return session.scalar(
        select(Restore)
        .where(
            Restore.archive_name == name,
            Restore.status.in_((RESTORE_QUEUED, RESTORE_RUNNING)),
        )
        .order_by(Restore.id.desc())
    )


@route("/v1/archives/<name>", ["DELETE"])
def delete_archive(name: str) -> Response:
    """Queue the deletion for the worker (the web process never deletes a file)."""
    query(Strict)
    body(Body)
    api = state()
    with api.db.read() as session:
        row = _archive_row(session, name)
        restoring = _active_restore(session, row.name)
    if restoring is not None:
        raise ApiError(
            409,
            f"archive '{row.name}' is being restored (restore {restoring.id}): "
            "delete it once the restore is over",
            restore_id=restoring.id,
        )
    command_id = services.queue_archive_deletion(
        api.db, row.name, requested_by=f"api:{caller().name}", now=system_clock()
    )
    url = url_for("api.get_command", command_id=command_id)
    answer = {"command_id": command_id, "archive_name": row.name, "status": "queued", "url": url}
    return ok(answer, 202, location=url)


@route("/v1/archives/<name>/restore", ["POST"])
def start_restore(name: str) -> Response:
    """Queue a restore for the worker; follow it with GET …/restore/status."""
    from backupmanager.restore.service import (
        RestoreInputError,
        RestoreOptions,
        RestoreRefused,
        queue_restore,
    )

    query(Strict)
    request_body = body(RestoreRequest)
    api = state()
    with api.db.read() as session:
        row = _archive_row(session, name)
        restoring = _active_restore(session, row.name)
    if restoring is not None:
        raise ApiError(
            409,
            f"archive '{row.name}' is already being restored (restore {restoring.id})",
            restore_id=restoring.id,
        )
    try:
        restore_id = queue_restore(
            api.db,
            api.settings,
            row.name,
            RestoreOptions.from_dict(request_body.model_dump()),
            requested_by=f"api:{caller().name}",
            now=system_clock(),
        )
    except (RestoreInputError, RestoreRefused) as error:
        # A well-formed request this archive cannot honour (its kind, these options): 409.
        raise ApiError(409, str(error)) from None
    # A plan is not a restore: it is read at …/restore/plan, never in the restores' status.
    endpoint = "api.restore_plan" if request_body.plan_only else "api.restore_status"
    url = url_for(endpoint, name=row.name)
    answer = {"restore_id": restore_id, "archive_name": row.name, "status": "queued", "url": url}
    return ok(answer, 202, location=url)


def _json_field(text: str, default: Any) -> Any:
    try:
        value = json.loads(text) if text else default
    except ValueError:
        return default
    return value if isinstance(value, type(default)) else default


def restore_status_view(restore: Restore, *, log_lines: int) -> dict[str, Any]:
    lines = restore.log_text.splitlines()
    return {
        "id": restore.id,
        "archive_name": restore.archive_name,
        "status": restore.status,
        "finished": restore.status in RESTORE_FINISHED,
        "phase": restore.phase,
        "progress": progress(restore.progress_bytes, restore.total_bytes),
        "options": _json_field(restore.options_json, {}),
        "plan": _json_field(restore.plan_json, {}),
        "steps": _json_field(restore.steps_json, []),
        "error": restore.error_message,
        "log_tail": lines[-log_lines:] if log_lines else [],
        "requested_by": restore.requested_by,
        "created_at": restore.created_at.isoformat(),
        "started_at": restore.started_at.isoformat() if restore.started_at else None,
        "finished_at": restore.finished_at.isoformat() if restore.finished_at else None,
    }


def _newest(name: str, *, plans: bool) -> Response:
    from backupmanager.restore.service import is_plan

    params = query(RestoreStatusQuery)
    checked_name(name)
    with state().db.read() as session:
        restore = session.scalar(
            select(Restore)
            .where(Restore.archive_name == name, is_plan() if plans else ~is_plan())
            .order_by(Restore.id.desc())
        )
        if restore is None:
            missing = "no plan was asked" if plans else "it has not been restored"
            raise ApiError(404, f"archive '{name}': {missing}")
        return ok(restore_status_view(restore, log_lines=params.log_lines))


@route("/v1/archives/<name>/restore/status", ["GET"])
def restore_status(name: str) -> Response:
    """The newest restore of this archive (plans excluded): phase, progress, steps, error, log."""
    return _newest(name, plans=False)


@route("/v1/archives/<name>/restore/plan", ["GET"])
def restore_plan(name: str) -> Response:
    """The newest plan asked with `plan_only`: `plan`, and `error` when it would be refused."""
    return _newest(name, plans=True)
