"""The dashboard's reads: a fixed number of SQL statements per page, whatever the data size."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from backupmanager import cron, services
from backupmanager.models import (
    COMMAND_QUEUED,
    COMMAND_RUNNING,
    RUN_ERROR,
    RUN_FINISHED_STATUSES,
    RUN_INTERRUPTED,
    RUN_QUEUED,
    RUN_RUNNING,
    RUN_SUCCESS,
    Archive,
    Command,
    Job,
    Run,
)

# A slot that passed this long ago without any run makes a job "overdue" (red on the dashboard).
OVERDUE_AFTER = timedelta(minutes=15)
RUNS_PER_PAGE = 50
ARCHIVES_PER_PAGE = 50
CHART_POINTS = 60
# Columns of a run without its log, which can be megabytes: lists never load it.
RUN_SUMMARY = (
    Run.id,
    Run.job_id,
    Run.status,
    Run.trigger,
    Run.phase,
    Run.queued_at,
    Run.started_at,
    Run.finished_at,
    Run.archive_name,
    Run.size_bytes,
    Run.error_message,
)


@dataclass(frozen=True)
class Page:
    items: list[Any]
    number: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


@dataclass
class JobRow:
    """One line of the dashboard."""

    job: Job
    next_run_at: datetime | None = None
    last_run: Any = None  # a RUN_SUMMARY row
    active_run: Any = None
    last_archive_size: int | None = None
    last_archive_name: str = ""
    overdue_since: datetime | None = None

    @property
    def failed(self) -> bool:
        return self.last_run is not None and self.last_run.status in (RUN_ERROR, RUN_INTERRUPTED)

    @property
    def alarm(self) -> bool:
        return self.failed or self.overdue_since is not None


@dataclass
class Dashboard:
    rows: list[JobRow]
    archive_count: int
    archive_bytes: int
    free_bytes: int | None
    worker_alive: bool
    counts: dict[str, int] = field(default_factory=dict)


def _newest_run_ids(statuses: tuple[str, ...]) -> Select[Any]:
    """For every job, the id of its newest run with one of these statuses (an index walk each)."""
    newest = (
        select(Run.id)
        .where(Run.job_id == Job.id, Run.status.in_(statuses))
        .order_by(Run.id.desc())
        .limit(1)
        .correlate(Job)
        .scalar_subquery()
    )
    return select(newest).select_from(Job)


def free_space(folder: Path) -> int | None:
    """Free bytes of the archives folder's file system (its parent if we may not look inside)."""
    for candidate in (folder, folder.parent):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def _overdue_since(job: Job, row: JobRow, timezone: tzinfo, now: datetime) -> datetime | None:
    if not job.enabled or row.active_run is not None:
        return None
    last = row.last_run.queued_at if row.last_run is not None else None
    reference = max(filter(None, (job.created_at, last)))
    try:
        slot = cron.next_run_after(job.cron_expr, timezone, reference)
    except ValueError:
        return None
    return slot if slot is not None and slot <= now - OVERDUE_AFTER else None


def dashboard(session: Session, archives_dir: Path, timezone: tzinfo, now: datetime) -> Dashboard:
    """Six statements for any number of jobs and runs."""
    jobs = list(session.scalars(select(Job).order_by(Job.name)))
    rows = {job.id: JobRow(job) for job in jobs}
    finished = session.execute(
        select(*RUN_SUMMARY).where(Run.id.in_(_newest_run_ids(RUN_FINISHED_STATUSES)))
    )
    for run in finished:
        rows[run.job_id].last_run = run
    for run in session.execute(
        select(*RUN_SUMMARY).where(Run.status.in_((RUN_QUEUED, RUN_RUNNING)))
    ):
        rows[run.job_id].active_run = run
    newest_archive = (
        select(Archive.id)
        .where(Archive.job_id == Job.id)
        .order_by(Archive.created_at.desc())
        .limit(1)
        .correlate(Job)
        .scalar_subquery()
    )
    for job_id, name, size_bytes in session.execute(
        select(Archive.job_id, Archive.name, Archive.size_bytes).where(
            Archive.id.in_(select(newest_archive).select_from(Job))
        )
    ):
        if job_id is not None:
            rows[job_id].last_archive_size = size_bytes
            rows[job_id].last_archive_name = name
    count, total = session.execute(
        select(func.count(Archive.id), func.coalesce(func.sum(Archive.size_bytes), 0))
    ).one()
    for job in jobs:
        row = rows[job.id]
        if job.enabled:
            try:
                row.next_run_at = cron.next_run_after(job.cron_expr, timezone, now)
            except ValueError:
                row.next_run_at = None
        row.overdue_since = _overdue_since(job, row, timezone, now)
    return Dashboard(
        rows=[rows[job.id] for job in jobs],
        archive_count=int(count),
        archive_bytes=int(total),
        free_bytes=free_space(archives_dir),
        worker_alive=services.worker_alive(session, now),
    )


def job_runs(session: Session, job_id: int, page: int) -> Page:
    """A job's runs, newest first, one page (two statements)."""
    total = session.scalar(select(func.count(Run.id)).where(Run.job_id == job_id)) or 0
    page = min(max(1, page), max(1, math.ceil(total / RUNS_PER_PAGE)))
    items = session.execute(
        select(*RUN_SUMMARY)
        .where(Run.job_id == job_id)
        .order_by(Run.id.desc())
        .limit(RUNS_PER_PAGE)
        .offset((page - 1) * RUNS_PER_PAGE)
    ).all()
    return Page(list(items), page, RUNS_PER_PAGE, total)


def chart_runs(session: Session, job_id: int) -> list[Any]:
    """The job's latest successful runs, oldest first, for the size and duration chart."""
    rows = session.execute(
        select(Run.started_at, Run.finished_at, Run.size_bytes, Run.archive_name)
        .where(Run.job_id == job_id, Run.status == RUN_SUCCESS)
        .order_by(Run.id.desc())
        .limit(CHART_POINTS)
    ).all()
    return list(reversed(rows))


@dataclass(frozen=True)
class ArchiveFilters:
    job_id: int | None = None
    kind: str = ""
    origin: str = ""


def archives(session: Session, filters: ArchiveFilters, page: int) -> Page:
    query = select(Archive)
    if filters.job_id is not None:
        query = query.where(Archive.job_id == filters.job_id)
    if filters.kind:
        query = query.where(Archive.kind == filters.kind)
    if filters.origin:
        query = query.where(Archive.origin == filters.origin)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = min(max(1, page), max(1, math.ceil(total / ARCHIVES_PER_PAGE)))
    items = session.scalars(
        query.order_by(Archive.created_at.desc(), Archive.name)
        .limit(ARCHIVES_PER_PAGE)
        .offset((page - 1) * ARCHIVES_PER_PAGE)
    ).all()
    return Page(list(items), page, ARCHIVES_PER_PAGE, total)


def archive_facets(session: Session) -> tuple[list[tuple[int, str]], list[str], list[str]]:
    """Jobs, kinds and origins to filter the archives page by."""
    jobs = [
        (row.id, row.name) for row in session.execute(select(Job.id, Job.name).order_by(Job.name))
    ]
    kinds = list(session.scalars(select(Archive.kind).distinct().order_by(Archive.kind)))
    origins = list(session.scalars(select(Archive.origin).distinct().order_by(Archive.origin)))
    return jobs, kinds, origins


def pending_deletions(session: Session) -> set[str]:
    """Archives whose deletion is queued or under way."""
    names = set()
    for payload in session.scalars(
        select(Command.payload_json).where(
            Command.kind == "delete_archive",
            Command.status.in_((COMMAND_QUEUED, COMMAND_RUNNING)),
        )
    ):
        names.add(str(json.loads(payload).get("name", "")))
    return names
