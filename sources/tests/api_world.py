"""The API tests' small fixed world: jobs, tokens of each kind, and the Flask app over them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from backupmanager import tokens
from backupmanager.app import create_app
from backupmanager.clock import system_clock
from backupmanager.db import Database
from backupmanager.settings import Settings
from tests.helpers import add_job

HEADER = "X-BackupManager-Key"
# Low bcrypt cost for speed: the tokens are real, only cheaper to check (the CLI test keeps 12).
TEST_ROUNDS = 4


@dataclass
class World:
    app: Flask
    client: FlaskClient
    db: Database
    settings: Settings
    admin: str  # full access
    reader: str  # read-only
    revoked: str  # revoked
    job_id: int
    disabled_job_id: int

    def call(
        self, method: str, path: str, *, token: str | None = None, **kwargs: Any
    ) -> TestResponse:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token is not None:
            headers[HEADER] = token
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        kwargs.setdefault("token", self.admin)
        return self.call("GET", path, **kwargs)


def make_world(db: Database, settings: Settings) -> World:
    job_id = add_job(db, settings)
    disabled_job_id = add_job(
        db,
        settings,
        name="wordpress weekly",
        config={"app_id": "wordpress"},
        cron="0 4 * * 0",
        enabled=False,
    )
    now = system_clock()
    admin = tokens.create_token(db, "admin", now=now, rounds=TEST_ROUNDS).token
    reader = tokens.create_token(db, "monitoring", read_only=True, now=now, rounds=TEST_ROUNDS)
    revoked = tokens.create_token(db, "old-script", now=now, rounds=TEST_ROUNDS).token
    tokens.revoke_token(db, "old-script", now=now)
    app = create_app(settings)
    return World(
        app=app,
        client=app.test_client(),
        db=db,
        settings=settings,
        admin=admin,
        reader=reader.token,
        revoked=revoked,
        job_id=job_id,
        disabled_job_id=disabled_job_id,
    )
