"""API routes for jobs and runs: list, start a run (queued, never run here), follow a run."""

from __future__ import annotations

from typing import Any, Literal

from flask import Response, url_for
from pydantic import Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backupmanager import services, views
from backupmanager.api import ID, caller, ok, route, state
from backupmanager.api.inputs import MAX_ID, MAX_OFFSET, Body, Page, Strict, body, query
from backupmanager.clock import system_clock
from backupmanager.models import (
    COMMAND_QUEUED,
    COMMAND_RUNNING,
    RUN_FINISHED_STATUSES,
    Archive,
    Command,
    Job,
    Run,
)

RunStatus = Literal["queued", "running", "success", "error", "interrupted"]


class JobsQuery(Page):
    enabled: bool | None = None
    type: str | None = Field(default=None, min_length=1, max_length=32)


class RunsQuery(Page):
    status: RunStatus | None = None


class AllRunsQuery(RunsQuery):
    job_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class RunQuery(Strict):
    log_offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


class RunRequest(Body):
    """No option yet: an empty object (or no body); unknown fields are refused."""


def progress(done: int | None, total: int | None) -> dict[str, Any]:
    percent = None
    if done is not None and total:
        percent = round(min(100.0, 100.0 * done / total), 1)
    return {"bytes": done, "total_bytes": total, "percent": percent}


def page(items: list[dict[str, Any]], total: int, params: Page) -> dict[str, Any]:
    following = params.offset + len(items)
    return {
        "items": items,
        "total": total,
        "limit": params.limit,
        "offset": params.offset,
        "next_offset": following if following < total else None,
    }


def runs_in_hand(session: Session, run_ids: list[int]) -> set[int]:
    """Runs whose command the worker has not finished.

    The runner marks a run `success` when its archive is published, then applies retention and
    writes the last lines of the log: a run is `finished` for the API only once its command is
    done too, so that a client following the log until then has all of it.
    """
    return set(
        session.scalars(
            select(Command.run_id).where(
                Command.run_id.in_(run_ids),
                Command.kind == "run_job",
                Command.status.in_((COMMAND_QUEUED, COMMAND_RUNNING)),
            )
        )
    )


def run_item(run: Run, in_hand: set[int]) -> dict[str, Any]:
    view = views.run_view(run)
    view["progress"] = progress(run.progress_bytes, run.estimated_bytes)
    view["finished"] = run.status in RUN_FINISHED_STATUSES and run.id not in in_hand
    view["url"] = url_for("api.get_run", run_id=run.id)
    return view


def _last_run_summary(run: Run | None) -> dict[str, Any] | None:
    if run is None:
        return None
    keys = ("id", "status", "started_at", "finished_at", "archive_name", "size_bytes")
    view = views.run_view(run)
    return {key: view[key] for key in keys}


def _job_extras(session: Session, job_ids: list[int]) -> tuple[dict[int, Run], dict[int, int]]:
    """Each job's newest run and its archive count, in two queries whatever the page size."""
    newest = select(func.max(Run.id)).where(Run.job_id.in_(job_ids)).group_by(Run.job_id)
    last_runs = {run.job_id: run for run in session.scalars(select(Run).where(Run.id.in_(newest)))}
    counts = session.execute(
        select(Archive.job_id, func.count())
        .where(Archive.job_id.in_(job_ids))
        .group_by(Archive.job_id)
    ).all()
    return last_runs, {int(job_id): int(count) for job_id, count in counts if job_id is not None}


def _job_items(session: Session, jobs: list[Job]) -> list[dict[str, Any]]:
    api, now = state(), system_clock()
    last_runs, counts = _job_extras(session, [job.id for job in jobs])
    items = []
    for job in jobs:
        view = views.job_view(job, timezone=api.timezone, now=now)
        view["last_run"] = _last_run_summary(last_runs.get(job.id))
        view["archive_count"] = counts.get(job.id, 0)
        items.append(view)
    return items


@route("/v1/jobs", ["GET"])
def list_jobs() -> Response:
    params = query(JobsQuery)
    conditions: list[Any] = []
    if params.enabled is not None:
        conditions.append(Job.enabled.is_(params.enabled))
    if params.type is not None:
        conditions.append(Job.type == params.type)
    with state().db.read() as session:
        total = session.scalar(select(func.count()).select_from(Job).where(*conditions)) or 0
        jobs = session.scalars(
            select(Job)
            .where(*conditions)
            .order_by(Job.id)
            .limit(params.limit)
            .offset(params.offset)
        ).all()
        items = _job_items(session, list(jobs))
    return ok(page(items, total, params))


@route(f"/v1/jobs/<{ID}:job_id>", ["GET"])
def get_job(job_id: int) -> Response:
    query(Strict)
    with state().db.read() as session:
        return ok(_job_items(session, [services.get_job(session, job_id)])[0])


def _list_runs(params: RunsQuery, job_id: int | None, *, job_must_exist: bool) -> dict[str, Any]:
    conditions: list[Any] = []
    if job_id is not None:
        conditions.append(Run.job_id == job_id)
    if params.status is not None:
        conditions.append(Run.status == params.status)
    with state().db.read() as session:
        if job_must_exist and job_id is not None:
            services.get_job(session, job_id)
        total = session.scalar(select(func.count()).select_from(Run).where(*conditions)) or 0
        runs = session.scalars(
            select(Run)
            .where(*conditions)
            .order_by(Run.id.desc())
            .limit(params.limit)
            .offset(params.offset)
        ).all()
        in_hand = runs_in_hand(session, [run.id for run in runs])
        return page([run_item(run, in_hand) for run in runs], total, params)


@route(f"/v1/jobs/<{ID}:job_id>/runs", ["GET"])
def list_job_runs(job_id: int) -> Response:
    return ok(_list_runs(query(RunsQuery), job_id, job_must_exist=True))


@route("/v1/runs", ["GET"])
def list_runs() -> Response:
    params = query(AllRunsQuery)
    return ok(_list_runs(params, params.job_id, job_must_exist=False))


@route(f"/v1/jobs/<{ID}:job_id>/run", ["POST"])
def start_run(job_id: int) -> Response:
    """Queue a run and answer at once; the worker runs it (the web process never does)."""
    query(Strict)
    body(RunRequest)
    api = state()
    queued = services.queue_run(
        api.db, job_id, trigger="api", requested_by=f"api:{caller().name}", now=system_clock()
    )
    with api.db.read() as session:
        run = services.get_run(session, queued.run_id)
    url = url_for("api.get_run", run_id=run.id)
    answer = {"run_id": run.id, "created": queued.created, "status": run.status, "url": url}
    return ok(answer, 202 if queued.created else 200, location=url)


@route(f"/v1/runs/<{ID}:run_id>", ["GET"])
def get_run(run_id: int) -> Response:
    """A run with its progress and its log from `log_offset` on, to follow it by polling."""
    params = query(RunQuery)
    with state().db.read() as session:
        run = services.get_run(session, run_id)
        view = run_item(run, runs_in_hand(session, [run.id]))
        log_text = run.log_text
    view["log"] = log_text[params.log_offset :]
    view["log_offset"] = min(params.log_offset, len(log_text))
    view["log_next_offset"] = len(log_text)
    return ok(view)
