"""Serving the Flask app: gunicorn's gthread worker in production (DESIGN §6)."""

from __future__ import annotations

from typing import Any

from backupmanager.settings import Settings

GUNICORN_TIMEOUT_SECONDS = 300  # long enough for a 50 MB upload chunk on a slow link


def serve_gunicorn(settings: Settings, bind: str) -> None:
    from gunicorn.app.base import BaseApplication

    from backupmanager.app import create_app

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options = {
                "bind": bind,
                "workers": 1,
                "worker_class": "gthread",
                "threads": 8,
                "timeout": GUNICORN_TIMEOUT_SECONDS,
                "accesslog": "-",
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return create_app(settings)

    Application().run()
