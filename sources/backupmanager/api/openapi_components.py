"""The OpenAPI document's components: schemas of every answer and body, shared responses."""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from backupmanager.api.inputs import MAX_LIMIT, MAX_OFFSET

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}
DATETIME: Schema = {"type": "string", "format": "date-time"}
ANY_OBJECT: Schema = {"type": "object"}
# YunoHost's archive names (archive.validate_archive_name), in ASCII: no '/', no leading or
# trailing '.', so never '..'.
ARCHIVE_NAME: Schema = {
    "type": "string",
    "pattern": "^[A-Za-z0-9_-]([A-Za-z0-9_.-]{0,48}[A-Za-z0-9_-])?$",
}
RUN_STATUSES = ["queued", "running", "success", "error", "interrupted"]


def nullable(schema: Schema) -> Schema:
    copy = deepcopy(schema)
    if "$ref" in copy:
        return {"anyOf": [copy, {"type": "null"}]}
    copy["type"] = [copy["type"], "null"]
    if "enum" in copy:
        copy["enum"] = [*copy["enum"], None]
    return copy


def closed(properties: dict[str, Schema], *, optional: tuple[str, ...] = ()) -> Schema:
    """An object with exactly these properties (all present unless listed as optional)."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def page_of(item: str) -> Schema:
    return closed(
        {
            "items": {"type": "array", "items": ref(item)},
            "total": INTEGER,
            "limit": INTEGER,
            "offset": INTEGER,
            "next_offset": nullable(INTEGER),
        }
    )


PROGRESS = closed(
    {
        "bytes": nullable(INTEGER),
        "total_bytes": nullable(INTEGER),
        "percent": nullable({"type": "number"}),
    }
)
RUN_PROPERTIES: dict[str, Schema] = {
    "id": INTEGER,
    "job_id": INTEGER,
    "status": {"type": "string", "enum": RUN_STATUSES},
    "trigger": STRING,
    "phase": STRING,
    "archive_name": nullable(STRING),
    "size_bytes": nullable(INTEGER),
    "sha256": nullable(STRING),
    "queued_at": DATETIME,
    "started_at": nullable(DATETIME),
    "finished_at": nullable(DATETIME),
    "error_message": nullable(STRING),
    "progress": ref("Progress"),
    "finished": BOOLEAN,
    "url": STRING,
}
ARCHIVE_PROPERTIES: dict[str, Schema] = {
    "name": STRING,
    "filename": STRING,
    "size_bytes": INTEGER,
    "created_at": DATETIME,
    "kind": STRING,
    "type": STRING,
    "app": nullable(STRING),
    "job_id": nullable(INTEGER),
    "run_id": nullable(INTEGER),
    "origin": STRING,
    "sha256": nullable(STRING),
    "instance_name": nullable(STRING),
}
SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "properties": {"error": STRING, "retry_after": INTEGER, "restore_id": INTEGER},
        "required": ["error"],
        "additionalProperties": True,
    },
    "Health": closed(
        {
            "status": {"type": "string", "enum": ["ok", "degraded"]},
            "worker_alive": BOOLEAN,
            "instance_name": STRING,
            "instance_url": STRING,
            "version": STRING,
            "api_version": {"type": "string", "enum": ["v1"]},
            "time": DATETIME,
            "token": closed({"name": STRING, "read_only": BOOLEAN}),
        }
    ),
    "Progress": PROGRESS,
    "RunSummary": closed(
        {
            "id": INTEGER,
            "status": {"type": "string", "enum": RUN_STATUSES},
            "started_at": nullable(DATETIME),
            "finished_at": nullable(DATETIME),
            "archive_name": nullable(STRING),
            "size_bytes": nullable(INTEGER),
        }
    ),
    "Job": closed(
        {
            "id": INTEGER,
            "name": STRING,
            "type": STRING,
            "config": ANY_OBJECT,
            "cron": STRING,
            "schedule": STRING,
            "next_run_at": nullable(DATETIME),
            "retention": STRING,
            "enabled": BOOLEAN,
            "core_only": BOOLEAN,
            "created_at": DATETIME,
            "updated_at": DATETIME,
            "last_error": nullable(STRING),
            # Restore drills of database jobs: when the newest archive was last proven restorable.
            "last_drill_at": nullable(DATETIME),
            "last_drill_status": nullable({"type": "string", "enum": ["success", "error"]}),
            "last_drill_message": nullable(STRING),
            "last_run": nullable(ref("RunSummary")),
            "archive_count": INTEGER,
        }
    ),
    "JobPage": page_of("Job"),
    "Run": closed(RUN_PROPERTIES),
    "RunDetail": closed(
        {**RUN_PROPERTIES, "log": STRING, "log_offset": INTEGER, "log_next_offset": INTEGER}
    ),
    "RunPage": page_of("Run"),
    "RunRequest": closed({}),
    "RunQueued": closed({"run_id": INTEGER, "created": BOOLEAN, "status": STRING, "url": STRING}),
    "Archive": closed(ARCHIVE_PROPERTIES),
    "ArchivePage": page_of("Archive"),
    "ArchiveInfo": closed(
        {
            **ARCHIVE_PROPERTIES,
            "job_name": nullable(STRING),
            "path": STRING,
            "yunohost_info": nullable(ANY_OBJECT),
        }
    ),
    "DeletionQueued": closed(
        {"command_id": INTEGER, "archive_name": STRING, "status": STRING, "url": STRING}
    ),
    "Command": closed(
        {
            "id": INTEGER,
            "kind": STRING,
            "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
            "finished": BOOLEAN,
            "run_id": nullable(INTEGER),
            "restore_id": nullable(INTEGER),
            "requested_by": STRING,
            "created_at": DATETIME,
            "claimed_at": nullable(DATETIME),
            "finished_at": nullable(DATETIME),
            "result": {},
            "error": nullable(STRING),
        }
    ),
    "RestoreRequest": closed(
        {
            "target": nullable({"type": "string", "maxLength": 4096, "pattern": "^/[^\\u0000]*$"}),
            "overwrite": BOOLEAN,
            "skip_commands": BOOLEAN,
            "plan_only": BOOLEAN,
            "database": nullable({"type": "string", "pattern": "^[A-Za-z0-9_]{1,64}$"}),
        },
        optional=("target", "overwrite", "skip_commands", "plan_only", "database"),
    ),
    "RestoreQueued": closed(
        {"restore_id": INTEGER, "archive_name": STRING, "status": STRING, "url": STRING}
    ),
    "RestoreStatus": closed(
        {
            "id": INTEGER,
            "archive_name": STRING,
            "status": {"type": "string", "enum": RUN_STATUSES},
            "finished": BOOLEAN,
            "phase": STRING,
            "progress": ref("Progress"),
            "options": ANY_OBJECT,
            "plan": ANY_OBJECT,
            "steps": {"type": "array"},
            "error": nullable(STRING),
            "log_tail": {"type": "array", "items": STRING},
            "requested_by": STRING,
            "created_at": DATETIME,
            "started_at": nullable(DATETIME),
            "finished_at": nullable(DATETIME),
        }
    ),
}


def _error(description: str, *, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": ref("Error")}},
    }
    if headers:
        answer["headers"] = headers
    return answer


RESPONSES: dict[str, Any] = {
    "BadRequest": _error("A parameter or the body is wrong; `error` says which and why."),
    "Unauthorized": _error(
        "No valid X-BackupManager-Key (missing, unknown, malformed or revoked).",
        headers={"WWW-Authenticate": {"schema": STRING}},
    ),
    "Forbidden": _error("The token is read-only and this action changes something."),
    "NotFound": _error("No such job, run, archive, restore or command."),
    "Conflict": _error(
        "The archive is being restored (`restore_id` names the restore), or cannot be "
        "restored with these options; `error` says why and what to do."
    ),
    "TooLarge": _error("The request body is larger than 64 KiB."),
    "UnsupportedMediaType": _error("The request body is not sent as application/json."),
    "TooManyRequests": _error(
        "Too many failed authentications from this address; try again after Retry-After seconds.",
        headers={"Retry-After": {"schema": INTEGER, "required": True}},
    ),
}
PARAMETERS: dict[str, Any] = {
    "limit": {
        "name": "limit",
        "in": "query",
        "description": "Items per page.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50},
    },
    "offset": {
        "name": "offset",
        "in": "query",
        "description": "Items to skip (`next_offset` of the previous page).",
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
    },
}
