"""The dashboard gains the database kinds: the job form, the drill button, the drill's verdict."""
# ruff: noqa: F811  (pytest fixtures imported from db_support are parameters here)

from __future__ import annotations

import re

from flask.testing import FlaskClient
from sqlalchemy import select

from backupmanager.app import create_app
from backupmanager.commands import run_inline_command
from backupmanager.db import Database
from backupmanager.models import Command, Job
from backupmanager.settings import Settings
from tests.helpers import run_job_now
from tests.integration.db_support import SampleDatabase, sample_db  # noqa: F401 (fixture)


def csrf(client: FlaskClient, path: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))
    assert match is not None
    return match[1]


def test_a_database_job_is_made_run_and_drilled_from_the_dashboard(
    db: Database, settings: Settings, sample_db: SampleDatabase
) -> None:
    client = create_app(settings, dev_mode=True).test_client()
    form = client.get(f"/jobs/new?type={sample_db.engine}").get_data(as_text=True)
    assert 'name="database"' in form and 'name="password_secret"' in form
    assert 'type="password"' not in form  # passwords are named, never typed in a page

    answer = client.post(
        "/jobs/new",
        data={
            "csrf_token": csrf(client, "/jobs/new"),
            "name": "shop database",
            "type": sample_db.engine,
            "database": sample_db.name,
            "db_user": sample_db.owner,
            "compression": "zstd",
            "drill_cron": "0 5 * * 0",
            "cron": "0 3 * * *",
            "retention_mode": "count",
            "retention_value": "7",
            "enabled": "on",
        },
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    with db.read() as session:
        job = session.scalars(select(Job).where(Job.name == "shop database")).one()
        job_id, config = job.id, job.config_json
    assert f'"database": "{sample_db.name}"' in config and '"drill_cron": "0 5 * * 0"' in config

    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert "never: no restore drill yet" in page
    assert run_job_now(db, settings, job_id).status == "success"
    queued = client.post(
        f"/jobs/{job_id}/drill", data={"csrf_token": csrf(client, f"/jobs/{job_id}")}
    )
    assert queued.status_code == 302
    with db.read() as session:
        command_id = session.scalars(select(Command.id).where(Command.kind == "drill")).one()
    run_inline_command(db, settings, command_id)  # what the worker does with it

    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert "Last proven restorable" in page
    assert 'data-status="success"' in page[page.index('id="drill"') :]
    assert "restored into a throw-away database" in page
