"""create_app(settings): the Flask application factory (web process and dev mode)."""

from __future__ import annotations

from typing import Any

from flask import Flask

from backupmanager import api, web
from backupmanager.db import Database
from backupmanager.settings import Settings


def create_app(settings: Settings, *, dev_mode: bool = False) -> Flask:
    """Nothing is done at import time: the database is opened here, per application.

    dev_mode (no login, the local user is the admin) is passed only by `backupmanager dev`.
    """
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    database = Database(settings)
    app.extensions["backupmanager.db"] = database

    @app.after_request
    def _security_headers(response: Any) -> Any:
        # Everything is served from our own origin: no CDN, no inline script (DESIGN, issue 6).
        response.headers["Content-Security-Policy"] = "default-src 'self'; frame-ancestors 'none'"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    web.init_app(app, settings, database, dev_mode=dev_mode)
    api.register(app, settings, database)  # /api/: token auth, JSON only, no SSO or CSRF
    return app
