"""The OpenAPI 3.1 document of the API, written by hand and checked against the routes by tests."""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from backupmanager.api.inputs import MAX_ID, MAX_OFFSET
from backupmanager.api.openapi_components import (
    ARCHIVE_NAME,
    BOOLEAN,
    PARAMETERS,
    RESPONSES,
    RUN_STATUSES,
    SCHEMAS,
    STRING,
    Schema,
    ref,
)


def _id(name: str) -> dict[str, Any]:
    schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    return {"name": name, "in": "path", "required": True, "schema": schema}


NAME = {"name": "name", "in": "path", "required": True, "schema": ARCHIVE_NAME}


def _query(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema}


def _ok(status: str, schema: str, description: str, *, location: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": ref(schema)}},
    }
    if location:
        answer["headers"] = {"Location": {"schema": STRING}}
    return {status: answer}


def operation(
    summary: str,
    answers: dict[str, Any],
    *,
    parameters: list[dict[str, Any]] | None = None,
    errors: tuple[str, ...] = (),
    body: str | None = None,
) -> dict[str, Any]:
    """One operation; every one may answer 400 (bad parameters), 401 and 429."""
    responses = dict(answers)
    for status, name in (
        ("400", "BadRequest"),
        ("401", "Unauthorized"),
        ("429", "TooManyRequests"),
    ):
        responses[status] = {"$ref": f"#/components/responses/{name}"}
    for status in errors:
        name = {
            "403": "Forbidden",
            "404": "NotFound",
            "409": "Conflict",
            "413": "TooLarge",
            "415": "UnsupportedMediaType",
        }[status]
        responses[status] = {"$ref": f"#/components/responses/{name}"}
    result: dict[str, Any] = {"summary": summary, "responses": responses}
    if parameters:
        result["parameters"] = parameters
    if body:
        result["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": ref(body)}},
        }
    return result


PAGE = [{"$ref": "#/components/parameters/limit"}, {"$ref": "#/components/parameters/offset"}]
WRITE_ERRORS = ("403", "404", "413", "415")
RUN_STATUS = _query("status", {"type": "string", "enum": RUN_STATUSES}, "Only runs in this state.")


LOG_LINES = _query(
    "log_lines",
    {"type": "integer", "minimum": 0, "maximum": 1000, "default": 50},
    "Last lines of the restore's log to include.",
)


def paths() -> dict[str, Any]:
    return {
        "/api/v1/health": {
            "get": operation(
                "Instance health: worker alive, version, the token's name and scope.",
                _ok("200", "Health", "The instance answers."),
            )
        },
        "/api/v1/openapi.json": {
            "get": operation(
                "This document.",
                {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
            )
        },
        "/api/v1/jobs": {
            "get": operation(
                "Jobs with their newest run and archive count.",
                _ok("200", "JobPage", "A page of jobs, by id."),
                parameters=[
                    *PAGE,
                    _query("enabled", BOOLEAN, "Only enabled (true) or disabled (false) jobs."),
                    _query(
                        "type",
                        {"type": "string", "minLength": 1, "maxLength": 32},
                        "Only jobs of this type.",
                    ),
                ],
            )
        },
        "/api/v1/jobs/{job_id}": {
            "get": operation(
                "One job.",
                _ok("200", "Job", "The job."),
                parameters=[_id("job_id")],
                errors=("404",),
            )
        },
        "/api/v1/jobs/{job_id}/runs": {
            "get": operation(
                "A job's runs, newest first.",
                _ok("200", "RunPage", "A page of runs."),
                parameters=[_id("job_id"), *PAGE, RUN_STATUS],
                errors=("404",),
            )
        },
        "/api/v1/jobs/{job_id}/run": {
            "post": operation(
                "Queue a run now; answers at once. 200 (not 202) when the job was already "
                "queued or running: that run is returned.",
                {
                    **_ok("202", "RunQueued", "Queued; follow it at `url`.", location=True),
                    **_ok(
                        "200",
                        "RunQueued",
                        "The job's run already queued or running.",
                        location=True,
                    ),
                },
                parameters=[_id("job_id")],
                errors=WRITE_ERRORS,
                body="RunRequest",
            )
        },
        "/api/v1/runs": {
            "get": operation(
                "Runs of every job, newest first.",
                _ok("200", "RunPage", "A page of runs."),
                parameters=[
                    *PAGE,
                    RUN_STATUS,
                    _query(
                        "job_id",
                        {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                        "Only this job's runs.",
                    ),
                ],
            )
        },
        "/api/v1/runs/{run_id}": {
            "get": operation(
                "One run: status, progress, and its log from `log_offset` on.",
                _ok("200", "RunDetail", "The run; poll again with log_offset=log_next_offset."),
                parameters=[
                    _id("run_id"),
                    _query(
                        "log_offset",
                        {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
                        "Characters of the log already read.",
                    ),
                ],
                errors=("404",),
            )
        },
        "/api/v1/commands/{command_id}": {
            "get": operation(
                "Work queued for the worker (an archive deletion, a restore…).",
                _ok("200", "Command", "The command; `finished` once done or failed."),
                parameters=[_id("command_id")],
                errors=("404",),
            )
        },
        "/api/v1/archives": {
            "get": operation(
                "Archives of the archives folder, ours and YunoHost's, newest first.",
                _ok("200", "ArchivePage", "A page of archives."),
                parameters=[
                    *PAGE,
                    _query(
                        "job_id",
                        {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                        "Only this job's archives.",
                    ),
                    _query(
                        "origin",
                        {"type": "string", "minLength": 1, "maxLength": 128},
                        "backupmanager, yunohost, yunohost-pre-upgrade or instance:NAME.",
                    ),
                    _query(
                        "type",
                        {"type": "string", "minLength": 1, "maxLength": 32},
                        "ynh_app, ynh_system, yunohost…",
                    ),
                    _query(
                        "app",
                        {"type": "string", "minLength": 1, "maxLength": 64},
                        "Only archives of this app.",
                    ),
                ],
            )
        },
        "/api/v1/archives/{name}": {
            "delete": operation(
                "Queue the archive's deletion (done by the worker; follow `url`).",
                _ok("202", "DeletionQueued", "Queued.", location=True),
                parameters=[NAME],
                errors=("403", "404", "409"),
            )
        },
        "/api/v1/archives/{name}/info": {
            "get": operation(
                "One archive: index entry, path, YunoHost's info.json when readable.",
                _ok("200", "ArchiveInfo", "The archive."),
                parameters=[NAME],
                errors=("404",),
            )
        },
        "/api/v1/archives/{name}/restore": {
            "post": operation(
                "Queue a restore of the archive; follow it at …/restore/status.",
                _ok("202", "RestoreQueued", "Queued.", location=True),
                parameters=[NAME],
                errors=(*WRITE_ERRORS, "409"),
                body="RestoreRequest",
            )
        },
        "/api/v1/archives/{name}/restore/status": {
            "get": operation(
                "The archive's newest restore: phase, progress, steps done, error, log tail.",
                _ok("200", "RestoreStatus", "The newest restore."),
                parameters=[NAME, LOG_LINES],
                errors=("404",),
            )
        },
        "/api/v1/archives/{name}/restore/plan": {
            "get": operation(
                "The archive's newest plan (asked with plan_only): the plan, or why it is refused.",
                _ok("200", "RestoreStatus", "The newest plan."),
                parameters=[NAME, LOG_LINES],
                errors=("404",),
            )
        },
    }


def document(version: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "BackupManager API",
            "version": version,
            "description": "Every endpoint needs the X-BackupManager-Key header "
            '(`backupmanager tokens create NAME`). Errors are `{"error": "..."}`. '
            "Guide: doc/api.md.",
        },
        "servers": [{"url": "/"}],
        "security": [{"ApiKey": []}],
        "paths": paths(),
        "components": {
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-BackupManager-Key"}
            },
            "schemas": deepcopy(SCHEMAS),
            "responses": deepcopy(RESPONSES),
            "parameters": deepcopy(PARAMETERS),
        },
    }
