"""The dashboard gains the database kinds: the job form, the drill, its verdict, restores."""
# ruff: noqa: F811  (pytest fixtures imported from db_support are parameters here)

from __future__ import annotations

import re

from sqlalchemy import select

from backupmanager.app import create_app
from backupmanager.commands import run_inline_command, run_inline_restore
from backupmanager.db import Database
from backupmanager.models import Command, Job
from backupmanager.settings import Settings
from tests.api_world import make_world
from tests.helpers import add_job, csrf, run_job_now, work_restore_commands
from tests.integration.db_support import (  # noqa: F401 (fixture)
    SampleDatabase,
    job_config,
    mysql_admin,
    pg_admin,
    sample_db,
    table_checksums,
    unique,
)


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


def test_a_database_archive_is_restored_under_a_new_name_from_the_dashboard(
    db: Database, settings: Settings, sample_db: SampleDatabase
) -> None:
    """End to end against the real server: form → the worker's plan → restore → same data."""
    job_id = add_job(db, settings, name="shop", type=sample_db.engine, config=job_config(sample_db))
    run = run_job_now(db, settings, job_id)
    assert run.status == "success", run.log_text
    checksums = table_checksums(sample_db.engine, sample_db.name)
    new_name = unique("bmt_web")
    sample_db.extra_databases.append(new_name)
    client = create_app(settings, dev_mode=True).test_client()
    form_page = f"/archives/{run.archive_name}/restore"

    asked = client.post(
        form_page, data={"csrf_token": csrf(client, form_page), "database": new_name}
    )
    assert asked.status_code == 302, asked.get_data(as_text=True)
    plan_id = int(re.search(r"plan=(\d+)", asked.headers["Location"])[1])  # type: ignore[index]
    work_restore_commands(db, settings)
    plan = client.get(f"/restores/{plan_id}/plan").get_data(as_text=True)
    assert new_name in plan and 'id="restore-now"' in plan
    assert new_name not in databases_on(sample_db.engine)  # the plan changed nothing

    token = csrf(client, form_page)
    fields = {"database": new_name, "action": "restore", "plan": str(plan_id)}
    assert f'form="restore-form" name="plan" value="{plan_id}"' in plan
    started = client.post(form_page, data={**fields, "csrf_token": token})
    assert started.status_code == 302
    restore_id = int(started.headers["Location"].rsplit("/", 1)[1])
    work_restore_commands(db, settings)

    done = client.get(f"/restores/{restore_id}/live").get_data(as_text=True)
    assert 'data-status="success"' in done, done
    assert table_checksums(sample_db.engine, new_name) == checksums
    assert table_checksums(sample_db.engine, sample_db.name) == checksums  # original untouched


def databases_on(engine: str) -> list[str]:
    if engine == "mysql":
        return mysql_admin("SHOW DATABASES;").split()
    return pg_admin("SELECT datname FROM pg_database;").split()


def test_an_existing_database_is_refused_in_the_words_of_each_face(
    db: Database, settings: Settings, sample_db: SampleDatabase
) -> None:
    """The original database exists: the dashboard's plan names its checkbox, the API its field."""
    job_id = add_job(db, settings, name="shop", type=sample_db.engine, config=job_config(sample_db))
    run = run_job_now(db, settings, job_id)
    assert run.status == "success", run.log_text
    checksums = table_checksums(sample_db.engine, sample_db.name)
    client = create_app(settings, dev_mode=True).test_client()
    form_page = f"/archives/{run.archive_name}/restore"
    asked = client.post(form_page, data={"csrf_token": csrf(client, form_page)})
    work_restore_commands(db, settings)
    page = client.get(asked.headers["Location"]).get_data(as_text=True)
    refusal = re.search(r'id="plan-refusal">([^<]*)<', page)
    assert refusal is not None and "“Replace the existing database”" in refusal[1]
    assert sample_db.name in refusal[1] and "--" not in refusal[1]
    assert 'id="restore-now"' not in page

    world = make_world(db, settings)
    answer = world.call(
        "POST", f"/api/v1/archives/{run.archive_name}/restore", token=world.admin, json={}
    )
    assert answer.status_code == 202, answer.get_json()
    run_inline_restore(db, settings, answer.get_json()["restore_id"])
    status = world.get(answer.get_json()["url"]).get_json()
    assert status["status"] == "error" and '"overwrite": true' in status["error"]
    assert "--overwrite" not in status["error"]
    assert table_checksums(sample_db.engine, sample_db.name) == checksums
