"""Dashboard pages through the Flask app on a real database: live run fragment, the dashboard
refreshing itself, form errors next to their field, retention preview, French, failed and
overdue jobs in red."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import update

from backupmanager import appcache
from backupmanager.app import create_app
from backupmanager.clock import system_clock
from backupmanager.db import Database
from backupmanager.models import Job, Run
from backupmanager.settings import Settings
from tests.helpers import add_job, csrf, run_job_now


@pytest.fixture
def app(settings: Settings, db: Database) -> Flask:
    appcache.refresh(settings, system_clock())  # what the worker does at start-up
    return create_app(settings, dev_mode=True)


def test_the_live_fragment_polls_while_running_and_stops_at_the_end(
    app: Flask, db: Database, settings: Settings
) -> None:
    job_id = add_job(db, settings)
    with db.write() as session:
        run = Run(job_id=job_id, status="running", phase="writing the archive", log_text="one\n")
        run.progress_bytes, run.estimated_bytes = 40 * 1024, 100 * 1024
        session.add(run)
        session.flush()
        run_id = run.id
    live = app.test_client().get(f"/runs/{run_id}/live").data.decode()
    assert 'hx-trigger="every 1s"' in live
    assert '<progress class="progress w-full" max="100" value="40"' in live
    assert "writing the archive" in live and "one" in live
    with db.write() as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(status="error", error_message="yunohost said no", finished_at=system_clock())
        )
    done = app.test_client().get(f"/runs/{run_id}/live").data.decode()
    assert "hx-trigger" not in done and "<progress" not in done
    assert "yunohost said no" in done


def test_the_dashboard_refreshes_itself_fast_while_a_run_is_active(
    app: Flask, db: Database, settings: Settings
) -> None:
    job_id = add_job(db, settings)
    client = app.test_client()
    page = client.get("/").data.decode()
    assert page.count('id="dashboard-live"') == 1 and "<html" in page
    assert 'hx-get="/dashboard/live"' in page and 'hx-trigger="every 10s"' in page
    with db.write() as session:
        session.add(Run(job_id=job_id, status="running", phase="writing the archive"))
    live = client.get("/dashboard/live").data.decode()
    assert "<html" not in live  # the part htmx swaps in, without the page around it
    assert 'data-active="yes"' in live and 'hx-trigger="every 2s"' in live
    assert 'data-status="running"' in live
    with db.write() as session:
        session.execute(
            update(Run)
            .where(Run.job_id == job_id)
            .values(status="success", finished_at=system_clock())
        )
    calm = client.get("/dashboard/live").data.decode()
    assert 'data-active="no"' in calm and 'hx-trigger="every 10s"' in calm
    assert 'data-status="success"' in calm
    french = client.get("/dashboard/live", headers={"Accept-Language": "fr"}).data.decode()
    assert "Tâches de sauvegarde" in french


def test_refused_input_is_shown_next_to_its_field_and_nothing_is_saved(
    app: Flask, db: Database
) -> None:
    client = app.test_client()
    form = {
        "csrf_token": csrf(client),
        "name": "bad/name",
        "type": "ynh_app",
        "app_id": "my_webapp",  # installed, but without backup support
        "cron": "0 3 * *",
        "retention_mode": "gfs",
        "retention_value": "7/4",
        "enabled": "on",
    }
    answer = client.post("/jobs/new", data=form)
    assert answer.status_code == 422
    page = answer.data.decode()
    fields = dict(re.findall(r'data-field="([a-z_]+)">([^<]*)<', page))
    assert set(fields) >= {"name", "cron", "app_id", "retention"}
    assert "backup script" in fields["app_id"]
    assert "5" in fields["cron"]  # "a schedule needs 5 fields"
    with db.read() as session:
        assert session.query(Job).count() == 0


def test_a_job_is_created_and_edited_through_the_form(app: Flask, db: Database) -> None:
    client = app.test_client()
    form = {
        "csrf_token": csrf(client),
        "name": "the system",
        "type": "ynh_system",
        "parts": ["conf_ldap", "data_home"],
        "cron": "30 2 * * 0",
        "retention_mode": "daily",
        "retention_value": "14",
        "enabled": "on",
    }
    answer = client.post("/jobs/new", data=form)
    assert answer.status_code == 302, answer.data.decode()
    with db.read() as session:
        job = session.query(Job).one()
        assert (job.type, job.cron_expr, job.retention_mode, job.retention_value) == (
            "ynh_system",
            "30 2 * * 0",
            "daily",
            "14",
        )
        assert '"parts": ["conf_ldap", "data_home"]' in job.config_json
    form.update(csrf_token=csrf(client), cron="0 4 * * *")
    del form["enabled"]
    assert client.post(f"/jobs/{job.id}/edit", data=form).status_code == 302
    with db.read() as session:
        edited = session.get(Job, job.id)
        assert edited is not None and edited.cron_expr == "0 4 * * *" and not edited.enabled


def test_retention_preview_names_what_would_be_deleted_today(
    app: Flask, db: Database, settings: Settings
) -> None:
    job_id = add_job(db, settings, cron="0 3 * * *")
    names = [run_job_now(db, settings, job_id).archive_name for _ in range(3)]
    preview = app.test_client().get(
        f"/jobs/preview/retention?retention_mode=count&retention_value=1&job_id={job_id}"
    )
    text = preview.data.decode()
    assert "delete 2 archives" in text
    assert names[0] in text and names[1] in text and names[2] not in text
    nothing = app.test_client().get(
        f"/jobs/preview/retention?retention_mode=count&retention_value=5&job_id={job_id}"
    )
    assert "Nothing would be deleted today" in nothing.data.decode()


def test_failed_and_overdue_jobs_are_red_and_french_is_chosen_from_the_browser(
    app: Flask, db: Database, settings: Settings
) -> None:
    failing = add_job(db, settings, name="failing", config={"app_id": "wordpress"})
    overdue = add_job(db, settings, name="overdue", cron="0 * * * *")
    fine = add_job(db, settings, name="fine", config={"app_id": "nocodb"}, cron="* * * * *")
    with db.write() as session:
        long_ago = system_clock() - timedelta(days=3)
        session.execute(update(Job).where(Job.id == overdue).values(created_at=long_ago))
        session.add(Run(job_id=failing, status="error", finished_at=system_clock()))
    run_job_now(db, settings, fine)
    page = app.test_client().get("/", headers={"Accept-Language": "fr-FR,fr;q=0.9"}).data.decode()
    alarms = dict(re.findall(r'data-job-id="(\d+)" data-alarm="(yes|no)"', page))
    assert alarms == {str(failing): "yes", str(overdue): "yes", str(fine): "no"}
    assert "En retard" in page and "Tâches de sauvegarde" in page and "Toutes les minutes" in page
    assert 'id="attention-count">2<' in page


def test_links_follow_the_path_nginx_serves_the_app_under(app: Flask) -> None:
    """Our nginx passes the full path and `X-Forwarded-Prefix: __PATH__` (conf/nginx.conf)."""
    client = app.test_client()
    for path in ("/backupmanager/", "/"):  # whether nginx strips the prefix or not
        answer = client.get(path, headers={"X-Forwarded-Prefix": "/backupmanager"})
        assert answer.status_code == 200
        page = answer.data.decode()
        assert 'href="/backupmanager/static/app.css"' in page
        assert 'href="/backupmanager/archives"' in page
    # Installed at the root of a domain, the prefix is "/": links stay as they are.
    page = client.get("/", headers={"X-Forwarded-Prefix": "/"}).data.decode()
    assert 'href="/static/app.css"' in page


def test_the_session_cookie_stays_under_the_apps_path(app: Flask) -> None:
    """Two instances on one domain (/backup-a, /backup-b) must not share their session."""
    under_path = app.test_client().get("/jobs/new", headers={"X-Forwarded-Prefix": "/backup-a"})
    cookie = under_path.headers["Set-Cookie"]
    assert cookie.startswith("backupmanager_session=") and "Path=/backup-a" in cookie
    at_root = app.test_client().get("/jobs/new")
    assert "Path=/;" in at_root.headers["Set-Cookie"] + ";"


def test_refused_input_is_explained_in_french_too(app: Flask) -> None:
    client = app.test_client()
    headers = {"Accept-Language": "fr"}
    form = {"csrf_token": csrf(client), "name": "x", "type": "ynh_app", "app_id": "nextcloud"}
    form.update(cron="61 3 * * *", retention_mode="count", retention_value="7")
    page = client.post("/jobs/new", data=form, headers=headers).data.decode()
    assert "Cette planification n&#39;est pas valide" in page
    assert "61" in page  # the detail stays, after the sentence
