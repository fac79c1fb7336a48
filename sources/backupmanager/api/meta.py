"""API routes about the API itself: health, the OpenAPI document, queued commands."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flask import Response
from sqlalchemy import select

from backupmanager import services
from backupmanager.api import ID, caller, ok, route, state
from backupmanager.api.inputs import Strict, query
from backupmanager.api.openapi import document
from backupmanager.clock import system_clock
from backupmanager.models import Command, WorkerState


@route("/v1/health", ["GET"])
def health() -> Response:
    """Cheap on purpose (monitoring polls it): no query while the database has not changed."""
    query(Strict)
    api, now = state(), system_clock()
    heartbeat = api.fresh("heartbeat", _heartbeat)
    worker_alive = heartbeat is not None and now - heartbeat < services.WORKER_STALE_AFTER
    authenticated = caller()
    return ok(
        {
            "status": "ok" if worker_alive else "degraded",
            "worker_alive": worker_alive,
            "instance_name": api.settings.instance_name,
            "instance_url": api.settings.instance_url,
            "version": api.version,
            "api_version": "v1",
            "time": now.isoformat(),
            "token": {"name": authenticated.name, "read_only": authenticated.read_only},
        }
    )


def _heartbeat() -> datetime | None:
    with state().db.read() as session:
        return session.scalar(select(WorkerState.heartbeat_at).where(WorkerState.id == 1))


@route("/v1/openapi.json", ["GET"])
def openapi() -> Response:
    query(Strict)
    return ok(document(state().version))


def _loads(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def command_view(command: Command) -> dict[str, Any]:
    return {
        "id": command.id,
        "kind": command.kind,
        "status": command.status,
        "finished": command.status in ("done", "failed"),
        "run_id": command.run_id,
        "restore_id": command.restore_id,
        "requested_by": command.requested_by,
        "created_at": command.created_at.isoformat(),
        "claimed_at": command.claimed_at.isoformat() if command.claimed_at else None,
        "finished_at": command.finished_at.isoformat() if command.finished_at else None,
        "result": _loads(command.result_json),
        "error": command.error,
    }


@route(f"/v1/commands/<{ID}:command_id>", ["GET"])
def get_command(command_id: int) -> Response:
    """Work queued for the worker (an archive deletion…): follow it until `finished`."""
    query(Strict)
    with state().db.read() as session:
        command = session.get(Command, command_id)
        if command is None:
            raise services.NotFound(f"there is no command {command_id}")
        return ok(command_view(command))
