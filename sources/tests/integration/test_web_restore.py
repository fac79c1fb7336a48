"""Restores from the dashboard: options, the worker's plan first, the restore, refusals by field."""
# ruff: noqa: F811  (pytest fixtures imported from custom_dir_support are parameters here)

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from backupmanager.app import create_app
from backupmanager.clock import system_clock
from backupmanager.db import Database
from backupmanager.models import Archive, Restore
from backupmanager.settings import Settings
from tests.helpers import add_job, csrf, run_job_now, work_restore_commands
from tests.integration.custom_dir_support import (  # noqa: F401 (fixtures)
    cd_settings,
    systemctl_root,
)


@pytest.fixture
def app(cd_settings: Settings, db: Database) -> Flask:
    return create_app(cd_settings, dev_mode=True)


def folder_archive(db: Database, settings: Settings, root: Path) -> str:
    """A custom_dir archive made by a real backup of a small tree."""
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha\n")
    (root / "sub" / "b.txt").write_text("beta\n")
    job_id = add_job(
        db, settings, name="folder", type="custom_dir", config={"source_path": str(root)}
    )
    run = run_job_now(db, settings, job_id)
    assert run.status == "success", run.log_text
    assert run.archive_name is not None
    return run.archive_name


def test_plan_first_then_restore_to_another_folder(
    app: Flask, db: Database, cd_settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "srv" / "app"
    archive = folder_archive(db, cd_settings, root)
    client = app.test_client()

    listing = client.get("/archives").data.decode()
    assert f'href="/archives/{archive}/restore"' in listing

    form_page = f"/archives/{archive}/restore"
    target = tmp_path / "elsewhere"
    asked = client.post(
        form_page, data={"csrf_token": csrf(client, form_page), "target": str(target)}
    )
    assert asked.status_code == 302
    plan_url = asked.headers["Location"]
    plan_id = int(re.search(r"plan=(\d+)", plan_url)[1])  # type: ignore[index]
    waiting = client.get(plan_url).data.decode()
    assert f'hx-get="/restores/{plan_id}/plan"' in waiting  # polls until the worker wrote it
    assert not target.exists()

    work_restore_commands(db, cd_settings)
    plan = client.get(f"/restores/{plan_id}/plan").data.decode()
    assert "hx-trigger" not in plan
    assert str(target / str(root)[1:]) in plan  # where each path goes
    assert "Created:" in plan and "Overwritten: 0 existing files" in plan
    assert 'id="restore-now"' in plan
    assert not target.exists()  # the plan changed nothing

    token = csrf(client, form_page)
    # "Restore now" sends the form's options with the plan's number (they must match).
    plan_field = re.search(r'form="restore-form" name="plan" value="(\d+)"', plan)
    assert plan_field is not None and int(plan_field[1]) == plan_id
    fields = {"target": str(target), "action": "restore", "plan": plan_field[1]}
    started = client.post(form_page, data={**fields, "csrf_token": token})
    assert started.status_code == 302
    status_url = started.headers["Location"]
    restore_id = int(status_url.rsplit("/", 1)[1])
    queued = client.get(status_url).data.decode()
    assert f'hx-get="/restores/{restore_id}/live"' in queued

    work_restore_commands(db, cd_settings)
    done = client.get(f"/restores/{restore_id}/live").data.decode()
    assert "hx-trigger" not in done
    assert 'data-status="success"' in done
    assert 'data-step="files"' in done
    assert "Restore complete" in done
    assert (target / str(root)[1:] / "sub" / "b.txt").read_text() == "beta\n"
    with db.read() as session:
        restore = session.get(Restore, restore_id)
        assert restore is not None and restore.requested_by.startswith("web:")

    # The restores page lists it, with where it went, linked to its own page.
    listing = client.get("/restores").data.decode()
    row = re.search(
        rf'<tr class="restore-row" data-restore-id="{restore_id}">(.*?)</tr>', listing, re.S
    )
    assert row is not None
    assert f'href="/restores/{restore_id}"' in row[1] and 'data-status="success"' in row[1]
    assert archive in row[1] and str(target) in row[1]


def test_the_restores_page_says_when_there_is_none_yet(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/restores").data.decode()
    assert 'id="no-restores"' in page and 'href="/restores"' in page  # in the menu too
    french = client.get("/restores", headers={"Accept-Language": "fr"}).data.decode()
    assert "Aucune restauration" in french


def test_a_database_option_on_a_folder_archive_is_refused_next_to_its_field(
    app: Flask, db: Database, cd_settings: Settings, tmp_path: Path
) -> None:
    archive = folder_archive(db, cd_settings, tmp_path / "srv" / "app")
    client = app.test_client()
    form_page = f"/archives/{archive}/restore"
    answer = client.post(
        form_page, data={"csrf_token": csrf(client, form_page), "database": "other"}
    )
    assert answer.status_code == 422
    fields = dict(re.findall(r'data-field="([a-z_]+)">([^<]*)<', answer.data.decode()))
    assert "only applies to MySQL / PostgreSQL archives" in fields["database"]
    french = client.post(
        form_page,
        data={"csrf_token": csrf(client, form_page), "database": "other"},
        headers={"Accept-Language": "fr"},
    ).data.decode()
    fields = dict(re.findall(r'data-field="([a-z_]+)">([^<]*)<', french))
    assert fields["database"].startswith("Un nouveau nom de base de données")
    with db.read() as session:
        assert session.scalar(select(Restore.id)) is None  # nothing queued


def test_files_in_the_way_are_refused_in_the_plan_until_overwrite_is_ticked(
    app: Flask, db: Database, cd_settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "srv" / "app"
    archive = folder_archive(db, cd_settings, root)
    (root / "a.txt").write_text("changed since\n")
    client = app.test_client()
    form_page = f"/archives/{archive}/restore"
    asked = client.post(form_page, data={"csrf_token": csrf(client, form_page)})
    work_restore_commands(db, cd_settings)
    page = client.get(asked.headers["Location"]).data.decode()
    assert 'id="plan-refusal"' in page and "Overwrite files that already exist" in page
    assert 'id="restore-now"' not in page
    assert (root / "a.txt").read_text() == "changed since\n"


def index_archive(
    db: Database, name: str, *, kind: str, origin: str, app: str | None = None
) -> None:
    """An archive row as the index holds it (the pages only read the index)."""
    with db.write() as session:
        session.add(
            Archive(
                name=name,
                filename=f"{name}.tar",
                kind=kind,
                app=app,
                origin=origin,
                size_bytes=10,
                created_at=system_clock(),
            )
        )


def test_yunohost_archives_point_to_yunohost(app: Flask, db: Database, sim_root: Path) -> None:
    index_archive(db, "ynh-made", kind="ynh_app", origin="yunohost", app="nextcloud")
    page = app.test_client().get("/archives/ynh-made/restore").data.decode()
    assert "yunohost backup restore ynh-made --force" in page
    assert 'id="restore-form"' not in page


def test_database_archives_offer_a_database_name_not_a_folder(app: Flask, db: Database) -> None:
    index_archive(db, "jerry_shop_db", kind="mysql", origin="local")
    client = app.test_client()
    assert 'href="/archives/jerry_shop_db/restore"' in client.get("/archives").data.decode()
    page = client.get("/archives/jerry_shop_db/restore").data.decode()
    assert 'id="database"' in page and 'id="target"' not in page  # the kind's options only
    assert "Replace the existing database" in page
    form_page = "/archives/jerry_shop_db/restore"
    refused = client.post(
        form_page, data={"csrf_token": csrf(client, form_page), "target": "/home/restored"}
    )
    assert refused.status_code == 422
    fields = dict(re.findall(r'data-field="([a-z_]+)">([^<]*)<', refused.data.decode()))
    assert fields["target"].startswith("--target is for custom_dir archives")
