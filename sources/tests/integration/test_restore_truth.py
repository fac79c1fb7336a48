"""Restores that tell the truth (issue 14, points 2-4): nothing existing replaced unasked, a plan
is not a restore, "Restore now" runs the plan that was shown."""
# ruff: noqa: F811  (pytest fixtures imported from custom_dir_support are parameters here)

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from backupmanager import commands
from backupmanager.app import create_app
from backupmanager.db import Database
from backupmanager.models import Restore
from backupmanager.restore import service
from backupmanager.restore.plan import RestoreOptions
from backupmanager.settings import Settings
from tests.api_world import make_world
from tests.helpers import csrf, restore_now, run_cli, work_restore_commands
from tests.integration.custom_dir_support import (  # noqa: F401 (fixtures)
    cd_settings,
    systemctl_root,
    write_cli_config,
)
from tests.integration.test_web_restore import folder_archive


@pytest.fixture
def app(cd_settings: Settings, db: Database) -> Flask:
    return create_app(cd_settings, dev_mode=True)


def occupied_target(tmp_path: Path, root: Path) -> Path:
    """A restore folder where one of the archive's files already exists, with other content."""
    target = tmp_path / "elsewhere"
    there = target / str(root)[1:] / "a.txt"
    there.parent.mkdir(parents=True)
    there.write_text("already here\n")
    return target


def restore_count(db: Database) -> int:
    with db.read() as session:
        return session.scalar(select(func.count(Restore.id))) or 0


# ---------------------------------------------------------------- 2. overwrite, one rule


def test_a_folder_target_replaces_existing_files_only_when_asked(
    db: Database, cd_settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "srv" / "app"
    archive = folder_archive(db, cd_settings, root)
    target = occupied_target(tmp_path, root)
    there = target / str(root)[1:] / "a.txt"

    plan = service.plan_restore(cd_settings, archive, RestoreOptions(target=str(target)))
    assert plan["files"]["overwrite"] == 1
    assert plan["refusal"] and "--overwrite" in plan["refusal"] and str(there) in plan["refusal"]
    refused = restore_now(db, cd_settings, archive, RestoreOptions(target=str(target)))
    assert refused["status"] == "error" and "nothing was changed" in refused["error_message"]
    assert there.read_text() == "already here\n"
    assert not (target / str(root)[1:] / "sub").exists()  # refused before anything was written

    done = restore_now(db, cd_settings, archive, RestoreOptions(target=str(target), overwrite=True))
    assert done["status"] == "success", done["log"]
    assert there.read_text() == "alpha\n"


def test_the_cli_with_yes_refuses_existing_files_in_a_target_and_names_them(
    db: Database, cd_settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "srv" / "app"
    archive = folder_archive(db, cd_settings, root)
    target = occupied_target(tmp_path, root)
    there = target / str(root)[1:] / "a.txt"
    env = write_cli_config(cd_settings, tmp_path / "cli.toml")
    done = run_cli(env, "restore", archive, "--target", str(target), "--yes", timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert str(there) in done.stderr and "--overwrite" in done.stderr
    assert there.read_text() == "already here\n"
    assert restore_count(db) == 0  # refused before anything was queued

    allowed = run_cli(
        env, "restore", archive, "--target", str(target), "--yes", "--overwrite", timeout=60
    )
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert there.read_text() == "alpha\n"


def test_the_api_refusal_names_its_own_field(
    db: Database, cd_settings: Settings, tmp_path: Path
) -> None:
    world = make_world(db, cd_settings)
    root = tmp_path / "srv" / "app"
    archive = folder_archive(db, cd_settings, root)
    target = occupied_target(tmp_path, root)
    answer = world.call(
        "POST",
        f"/api/v1/archives/{archive}/restore",
        token=world.admin,
        json={"target": str(target)},
    )
    assert answer.status_code == 202, answer.get_json()
    commands.run_inline_restore(world.db, world.settings, answer.get_json()["restore_id"])
    status = world.get(answer.get_json()["url"]).get_json()
    assert status["status"] == "error"
    assert '"overwrite": true' in status["error"] and "--overwrite" not in status["error"]
    assert (target / str(root)[1:] / "a.txt").read_text() == "already here\n"


def test_the_dashboard_plan_names_the_checkbox_and_offers_no_restore(
    app: Flask, db: Database, cd_settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "srv" / "app"
    archive = folder_archive(db, cd_settings, root)
    target = occupied_target(tmp_path, root)
    client = app.test_client()
    page, plan_id = ask_plan(client, db, cd_settings, archive, {"target": str(target)})
    refusal = re.search(r'id="plan-refusal">([^<]*)<', page)
    assert refusal is not None
    assert "Overwrite files that already exist" in refusal[1] and "--" not in refusal[1]
    assert str(target / str(root)[1:] / "a.txt") in refusal[1]
    assert 'id="restore-now"' not in page
    french = client.get(f"/restores/{plan_id}/plan", headers={"Accept-Language": "fr"})
    assert "Cochez « Écraser les fichiers qui existent déjà »" in french.data.decode()

    ticked, _plan_id = ask_plan(
        client, db, cd_settings, archive, {"target": str(target), "overwrite": "on"}
    )
    assert 'id="restore-now"' in ticked and 'id="plan-refusal"' not in ticked


# ---------------------------------------------------------------- 3. a plan is not a restore


def ask_plan(
    client: FlaskClient, db: Database, settings: Settings, archive: str, fields: dict[str, str]
) -> tuple[str, str]:
    """ "Show the plan" with these fields; the worker's part; the form page with the plan, and the
    plan's number."""
    form_page = f"/archives/{archive}/restore"
    asked = client.post(
        form_page, data={"csrf_token": csrf(client, form_page), "action": "plan", **fields}
    )
    assert asked.status_code == 302, asked.data.decode()
    work_restore_commands(db, settings)
    plan_id = re.search(r"plan=(\d+)", asked.headers["Location"])[1]  # type: ignore[index]
    return str(client.get(asked.headers["Location"]).data.decode()), plan_id


def test_a_plan_is_never_listed_as_a_restore(
    app: Flask, db: Database, cd_settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "srv" / "app"
    archive = folder_archive(db, cd_settings, root)
    client = app.test_client()
    _page, plan_id = ask_plan(client, db, cd_settings, archive, {"target": str(tmp_path / "out")})

    listing = client.get("/restores").data.decode()
    assert f'data-restore-id="{plan_id}"' not in listing and 'id="no-restores"' in listing
    shown = client.get(f"/restores/{plan_id}")  # an old link to it: shown as the plan it is
    assert shown.status_code == 302
    assert f"/archives/{archive}/restore?plan={plan_id}" in shown.headers["Location"]
    assert "Restore complete" not in client.get(shown.headers["Location"]).data.decode()


def test_the_api_reports_plans_apart_from_restores(
    db: Database, cd_settings: Settings, tmp_path: Path
) -> None:
    world = make_world(db, cd_settings)
    archive = folder_archive(db, cd_settings, tmp_path / "srv" / "app")
    answer = world.call(
        "POST",
        f"/api/v1/archives/{archive}/restore",
        token=world.admin,
        json={"target": str(tmp_path / "out"), "plan_only": True},
    )
    assert answer.status_code == 202
    assert answer.get_json()["url"] == f"/api/v1/archives/{archive}/restore/plan"
    commands.run_inline_restore(world.db, world.settings, answer.get_json()["restore_id"])
    assert world.get(f"/api/v1/archives/{archive}/restore/status").status_code == 404
    plan = world.get(f"/api/v1/archives/{archive}/restore/plan").get_json()
    assert plan["options"]["plan_only"] is True and plan["plan"]["paths"]
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- 4. the plan shown is the restore


def test_restore_now_with_options_other_than_the_plan_s_is_refused(
    app: Flask, db: Database, cd_settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "srv" / "app"
    archive = folder_archive(db, cd_settings, root)
    client = app.test_client()
    folder_a, folder_b = tmp_path / "a", tmp_path / "b"
    _page, plan_id = ask_plan(client, db, cd_settings, archive, {"target": str(folder_a)})
    form_page = f"/archives/{archive}/restore"
    token = csrf(client, form_page)
    before = restore_count(db)

    for fields in ({"target": str(folder_b)}, {"target": str(folder_a), "overwrite": "on"}, {}):
        changed = client.post(
            form_page,
            data={"csrf_token": token, "action": "restore", "plan": plan_id, **fields},
        )
        assert changed.status_code == 409
        assert "not those of the plan shown" in changed.data.decode()
    no_plan = client.post(
        form_page, data={"csrf_token": token, "action": "restore", "target": str(folder_a)}
    )
    assert no_plan.status_code == 409
    assert restore_count(db) == before  # nothing queued
    work_restore_commands(db, cd_settings)
    assert not folder_a.exists() and not folder_b.exists()

    same = client.post(
        form_page,
        data={"csrf_token": token, "action": "restore", "plan": plan_id, "target": str(folder_a)},
    )
    assert same.status_code == 302 and "/restores/" in same.headers["Location"]
    work_restore_commands(db, cd_settings)
    assert (folder_a / str(root)[1:] / "a.txt").read_text() == "alpha\n"
    assert not folder_b.exists()
