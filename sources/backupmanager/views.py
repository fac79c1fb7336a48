"""JSON-ready views of jobs, runs and archives, shared by the CLI, the API and the dashboard."""

from __future__ import annotations

import json
from datetime import datetime, tzinfo
from typing import Any

from backupmanager import cron
from backupmanager.models import Archive, Job, Run, as_dict

RUN_FIELDS = (
    "id",
    "job_id",
    "status",
    "trigger",
    "phase",
    "archive_name",
    "size_bytes",
    "sha256",
    "queued_at",
    "started_at",
    "finished_at",
    "error_message",
)
ARCHIVE_FIELDS = (
    "name",
    "filename",
    "size_bytes",
    "created_at",
    "kind",
    "app",
    "job_id",
    "run_id",
    "origin",
    "sha256",
    "instance_name",
)


def job_view(job: Job, *, timezone: tzinfo, now: datetime) -> dict[str, Any]:
    try:
        schedule_words = cron.describe(job.cron_expr)
        upcoming = cron.next_run_after(job.cron_expr, timezone, now) if job.enabled else None
    except ValueError:  # a stored expression that no longer parses must not break a listing
        schedule_words, upcoming = job.cron_expr, None
    return {
        "id": job.id,
        "name": job.name,
        "type": job.type,
        "config": json.loads(job.config_json),
        "cron": job.cron_expr,
        "schedule": schedule_words,
        "next_run_at": upcoming.isoformat() if upcoming else None,
        "retention": f"{job.retention_mode}:{job.retention_value}",
        "enabled": job.enabled,
        "core_only": job.core_only,
        "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
        "last_error": job.last_error,
        # Restore drills of database jobs (drill.py): when the newest archive was last proven.
        "last_drill_at": job.last_drill_at.isoformat() if job.last_drill_at else None,
        "last_drill_status": job.last_drill_status,
        "last_drill_message": job.last_drill_message,
    }


def run_view(run: Run, *, with_log: bool = False) -> dict[str, Any]:
    view = as_dict(run, RUN_FIELDS)
    if with_log:
        view["log"] = run.log_text
    return view


def archive_view(archive: Archive) -> dict[str, Any]:
    view = as_dict(archive, ARCHIVE_FIELDS)
    view["type"] = archive.kind  # SPEC §17 names it "type"
    return view
