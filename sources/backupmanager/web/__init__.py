"""The dashboard (issue 6): blueprints, identity and CSRF checks, translations, template helpers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from flask import Flask, current_app

from backupmanager.clock import instance_timezone
from backupmanager.db import Database
from backupmanager.settings import DEFAULT_DATA_DIR, Settings

EXTENSION = "backupmanager.web"


@dataclass(frozen=True)
class WebState:
    """What every dashboard view needs, kept on the application (no globals at import time)."""

    settings: Settings
    db: Database
    timezone: tzinfo
    dev_mode: bool


def state() -> WebState:
    web_state: WebState = current_app.extensions[EXTENSION]
    return web_state


def init_app(app: Flask, settings: Settings, database: Database, *, dev_mode: bool = False) -> None:
    """Register the dashboard on the app; the API blueprint has its own auth and is not touched."""
    from backupmanager.web import archives, auth, dashboard, i18n, jobs, proxy, restores, runs

    if dev_mode and settings.data_dir == DEFAULT_DATA_DIR:
        # Dev mode drops the login: never on the production data folder, whatever calls us.
        raise RuntimeError("dev mode refuses the production data folder; use --data-dir")
    app.extensions[EXTENSION] = WebState(settings, database, instance_timezone(settings), dev_mode)
    auth.init_app(app, settings, dev_mode=dev_mode)
    i18n.init_app(app)
    for blueprint in (dashboard.bp, jobs.bp, runs.bp, archives.bp, restores.bp):
        app.register_blueprint(blueprint)  # each made by auth.protected_blueprint
    app.wsgi_app = proxy.PrefixMiddleware(app.wsgi_app)  # type: ignore[method-assign]
