"""create_app(settings): the Flask application factory (web process and dev mode)."""

from __future__ import annotations

from typing import Any

from flask import Flask, render_template
from sqlalchemy import func, select

from backupmanager import api, services, views
from backupmanager.clock import instance_timezone, system_clock
from backupmanager.db import Database
from backupmanager.models import Archive, Job, Run
from backupmanager.settings import Settings

RECENT_RUNS = 20


def create_app(settings: Settings) -> Flask:
    """Nothing is done at import time: the database is opened here, per application."""
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    database = Database(settings)
    timezone = instance_timezone(settings)

    @app.after_request
    def _security_headers(response: Any) -> Any:
        # Everything is served from our own origin: no CDN, no inline script (DESIGN, issue 6).
        response.headers["Content-Security-Policy"] = "default-src 'self'; frame-ancestors 'none'"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    @app.get("/")
    def dashboard() -> str:
        now = system_clock()
        with database.read() as session:
            jobs = [
                views.job_view(job, timezone=timezone, now=now)
                for job in session.scalars(select(Job).order_by(Job.name))
            ]
            runs = [
                views.run_view(run)
                for run in session.scalars(select(Run).order_by(Run.id.desc()).limit(RECENT_RUNS))
            ]
            archives = [
                views.archive_view(row)
                for row in session.scalars(select(Archive).order_by(Archive.created_at.desc()))
            ]
            total_bytes = session.scalar(select(func.coalesce(func.sum(Archive.size_bytes), 0)))
            worker_alive = services.worker_alive(session, now)
        return render_template(
            "dashboard_local.html",
            settings=settings,
            jobs=jobs,
            runs=runs,
            archives=archives,
            total_bytes=total_bytes,
            worker_alive=worker_alive,
        )

    api.register(app, settings, database)  # /api/: token auth, JSON only, no SSO or CSRF
    return app
