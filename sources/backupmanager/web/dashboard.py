"""The dashboard: every job with its state, totals of the archives folder, the worker's health."""

from __future__ import annotations

from flask import render_template

from backupmanager.clock import system_clock
from backupmanager.web import queries, state
from backupmanager.web.auth import protected_blueprint

bp = protected_blueprint("dashboard", __name__)


@bp.get("/")
def index() -> str:
    return _render("dashboard_local.html")


@bp.get("/dashboard/live")
def live() -> str:
    """The dashboard without the page around it, for htmx to swap in (states change by themselves)."""
    return _render("_dashboard_live.html")


def _render(template: str) -> str:
    web = state()
    now = system_clock()
    with web.db.read() as session:
        data = queries.dashboard(session, web.settings.archives_dir, web.timezone, now)
    active = any(row.active_run is not None for row in data.rows)
    return render_template(template, data=data, now=now, active=active)
