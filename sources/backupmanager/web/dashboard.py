"""The dashboard: every job with its state, totals of the archives folder, the worker's health."""

from __future__ import annotations

from flask import render_template

from backupmanager.clock import system_clock
from backupmanager.web import queries, state
from backupmanager.web.auth import protected_blueprint

bp = protected_blueprint("dashboard", __name__)


@bp.get("/")
def index() -> str:
    web = state()
    now = system_clock()
    with web.db.read() as session:
        data = queries.dashboard(session, web.settings.archives_dir, web.timezone, now)
    return render_template("dashboard_local.html", data=data, now=now)
