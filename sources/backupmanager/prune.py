"""Retention applied to the index: preview (dry run) and apply, with the safety rules of SPEC §5."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from backupmanager.archive import remove_archive_files
from backupmanager.db import Database
from backupmanager.index import ORIGIN_LOCAL
from backupmanager.models import RUN_FINISHED_STATUSES, RUN_SUCCESS, Archive, Job, Run
from backupmanager.retention import ArchiveRef, RetentionPlan, RetentionPolicy, plan_retention


def _last_run_succeeded(session: Session, job_id: int) -> bool:
    status = session.scalar(
        select(Run.status)
        .where(Run.job_id == job_id, Run.status.in_(RUN_FINISHED_STATUSES))
        .order_by(Run.id.desc())
        .limit(1)
    )
    return status == RUN_SUCCESS


def plan_for_job(session: Session, job: Job, *, now: datetime, timezone: tzinfo) -> RetentionPlan:
    """What retention would keep and delete for this job right now, and why."""
    rows = session.scalars(select(Archive).where(Archive.job_id == job.id)).all()
    refs = [
        ArchiveRef(
            name=row.name,
            created_at=row.created_at,
            job_id=row.job_id,
            created_by_backupmanager=row.origin == ORIGIN_LOCAL,
        )
        for row in rows
    ]
    policy = RetentionPolicy.parse(job.retention_mode, job.retention_value)
    return plan_retention(
        refs,
        policy,
        job_id=job.id,
        now=now,
        last_run_succeeded=_last_run_succeeded(session, job.id),
        tz=timezone,
    )


def apply_for_job(
    db: Database,
    archives_dir: Path,
    job_id: int,
    *,
    now: datetime,
    timezone: tzinfo,
    log: Callable[[str], None],
) -> RetentionPlan:
    """Delete what the plan says, one archive at a time, logging each with its reason."""
    with db.write() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise LookupError(f"job {job_id} does not exist")
        plan = plan_for_job(session, job, now=now, timezone=timezone)
        if plan.skipped_reason:
            log(f"Retention: nothing deleted ({plan.skipped_reason}).")
            return plan
        for decision in plan.delete:
            row = session.scalar(select(Archive).where(Archive.name == decision.name))
            # Checked again here, whatever the policy code says: only our own archives of this job.
            if row is None or row.origin != ORIGIN_LOCAL or row.job_id != job_id:
                continue
            remove_archive_files(archives_dir, row.name)
            session.delete(row)
            log(f"Retention: deleted {decision.name} ({decision.reason}).")
        log(f"Retention: kept {len(plan.keep)} archive(s), deleted {len(plan.delete)}.")
    return plan
