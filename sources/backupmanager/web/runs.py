"""A run's page: phase, progress bar, the log as it grows (htmx polling), then the result."""

from __future__ import annotations

from typing import Any

from flask import abort, render_template

from backupmanager import services
from backupmanager.clock import system_clock
from backupmanager.models import RUN_QUEUED, RUN_RUNNING, Run
from backupmanager.web import state
from backupmanager.web.auth import protected_blueprint

bp = protected_blueprint("runs", __name__)
LIVE_LOG_CHARS = 64_000  # while a run goes on, the page shows the end of a long log


def _load(run_id: int) -> tuple[Run, Any, dict[str, Any]]:
    web = state()
    with web.db.read() as session:
        try:
            run = services.get_run(session, run_id)
        except services.NotFound:
            abort(404)
        job = run.job
        worker_alive = services.worker_alive(session, system_clock())
    active = run.status in (RUN_QUEUED, RUN_RUNNING)
    log = run.log_text
    clipped = active and len(log) > LIVE_LOG_CHARS
    context = {
        "active": active,
        "log": log[-LIVE_LOG_CHARS:] if clipped else log,
        "clipped": clipped,
        "worker_alive": worker_alive,
        "percent": _percent(run),
    }
    return run, job, context


def _percent(run: Run) -> int | None:
    if not run.estimated_bytes or run.progress_bytes is None:
        return None
    return max(0, min(100, round(100 * run.progress_bytes / run.estimated_bytes)))


@bp.get("/runs/<int:run_id>")
def show(run_id: int) -> str:
    run, job, context = _load(run_id)
    return render_template("run.html", run=run, job=job, now=system_clock(), **context)


@bp.get("/runs/<int:run_id>/live")
def live(run_id: int) -> str:
    """The part of the run page that htmx refreshes until the run is over."""
    run, job, context = _load(run_id)
    return render_template("_run_live.html", run=run, job=job, now=system_clock(), **context)
