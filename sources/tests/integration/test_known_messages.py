"""Run and restore errors are shown in French on a French page, our own sentences translated."""
# ruff: noqa: F811  (pytest fixtures imported from db_support are parameters here)

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask_babel import gettext

from backupmanager import appcache
from backupmanager.app import create_app
from backupmanager.clock import system_clock
from backupmanager.databases import errors as database_errors
from backupmanager.db import Database
from backupmanager.settings import Settings
from backupmanager.web.known_messages import FIELD, LABELS, TEMPLATES, localized
from tests.integration.db_support import SampleDatabase, sample_db, unique  # noqa: F401
from tests.integration.test_db_drill import drill_now, make_job
from tests.integration.test_db_errors import failed_run

SAMPLE_FIELDS = {
    "database": "shop",
    "user": "bob",
    "server": database_errors.REMOTE_SERVER.format(name="MariaDB", address="10.0.0.2:3306"),
    "program": "/usr/bin/mysqldump",
    "package": "mariadb-client",
    "names": "blog, shop_old",
    "name": "MariaDB",
    "address": "10.0.0.2:3306",
    "archive": "bm-shop-20261122-030000",
    "seconds": "4",
    "compared": "our words",
    "error": "a tool's words",
    "problems": "table t: 3 rows, 4 recorded",
}


@pytest.fixture
def app(settings: Settings, db: Database) -> Flask:
    appcache.refresh(settings, system_clock())
    return create_app(settings, dev_mode=True)


def test_every_sentence_of_ours_has_a_french_translation_with_the_same_fields(app: Flask) -> None:
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        for template in (*TEMPLATES, *LABELS):
            french = gettext(template)
            assert french != template, f"no French for: {template}"
            assert sorted(FIELD.findall(french)) == sorted(FIELD.findall(template)), template


def test_a_stored_message_is_shown_in_the_pages_language(app: Flask) -> None:
    tool_output = "mysqldump: Got error: 1049: \"Unknown database 'shop'\" when selecting"
    for template in TEMPLATES:
        english = tool_output + "\n" + template.format(**SAMPLE_FIELDS)
        with app.test_request_context(headers={"Accept-Language": "en"}):
            assert localized(english) == english
        with app.test_request_context(headers={"Accept-Language": "fr"}):
            french = localized(english)
            expected = gettext(template).format(
                **{**SAMPLE_FIELDS, "server": "le serveur MariaDB à l'adresse 10.0.0.2:3306"}
            )
        assert french == tool_output + "\n" + expected  # what the tool printed stays as is
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        assert localized(None) == ""
        assert localized("something we never wrote") == "something we never wrote"


def test_a_failed_database_run_reads_in_french_on_a_french_page(
    app: Flask, db: Database, settings: Settings, sample_db: SampleDatabase
) -> None:
    missing = unique("bmt_missing")
    run = failed_run(db, settings, sample_db.engine, {"database": missing, "user": "x"})
    server = "MariaDB" if sample_db.engine == "mysql" else "PostgreSQL"
    assert f"'{missing}' does not exist on the local {server} server" in (run.error_message or "")
    client = app.test_client()
    for path in (f"/runs/{run.id}", f"/jobs/{run.job_id}"):
        french = client.get(path, headers={"Accept-Language": "fr"}).data.decode()
        assert (
            f"La base de données &#39;{missing}&#39; n&#39;existe pas sur le serveur {server} local"
            in french
        )
        assert "Vérifiez le nom de base de la tâche" in french
        english = client.get(path).data.decode()
        assert f"&#39;{missing}&#39; does not exist on the local {server} server" in english


def test_a_drills_verdict_reads_in_french_on_the_jobs_page(
    app: Flask, db: Database, settings: Settings, sample_db: SampleDatabase
) -> None:
    job_id = make_job(db, settings, sample_db)
    assert drill_now(db, settings, job_id)["status"] == "success"
    french = app.test_client().get(f"/jobs/{job_id}", headers={"Accept-Language": "fr"})
    page = french.data.decode()
    assert "restaurée dans une base jetable en" in page
    assert re.search(r"\d+ tables, \d+ lignes et \d+ vues, comme dans la sauvegarde\.", page)
    english = app.test_client().get(f"/jobs/{job_id}").data.decode()
    assert re.search(r"\d+ tables, \d+ rows and \d+ views, as in the dump\.", english)
