"""API endpoints for archives: listing, info, deletion and restore (queued), path traversal."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from backupmanager import commands
from backupmanager.clock import system_clock
from backupmanager.db import Database
from backupmanager.index import sync_index
from backupmanager.models import Command, Restore
from backupmanager.settings import Settings
from tests.api_world import World, make_world
from tests.conftest import SIMULATOR
from tests.helpers import add_job, read_calls, run_job_now


@pytest.fixture
def world(db: Database, settings: Settings) -> World:
    return make_world(db, settings)


def make_archive(world: World) -> str:
    run = run_job_now(world.db, world.settings, world.job_id)
    assert run.status == "success" and run.archive_name
    return run.archive_name


def webadmin_backup(world: World, name: str) -> None:
    """An archive made by YunoHost itself (webadmin), then noticed by the index."""
    subprocess.run(
        [str(SIMULATOR), "backup", "create", "--name", name, "--apps", "wordpress"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    with world.db.write() as session:
        sync_index(session, world.settings.archives_dir, world.settings.instance_name)


def test_archives_are_listed_newest_first_with_filters(world: World) -> None:
    ours = make_archive(world)
    webadmin_backup(world, "manual-wordpress")
    listing = world.get("/api/v1/archives").get_json()
    assert listing["total"] == 2
    assert {archive["name"] for archive in listing["items"]} == {ours, "manual-wordpress"}
    assert listing["items"][0]["created_at"] >= listing["items"][1]["created_at"]

    def names(query: str) -> list[str]:
        return [
            archive["name"]
            for archive in world.get(f"/api/v1/archives?{query}").get_json()["items"]
        ]

    assert names("origin=backupmanager") == [ours]
    assert names("origin=yunohost") == ["manual-wordpress"]
    assert names(f"job_id={world.job_id}") == [ours]
    assert names("type=ynh_app") == [ours]
    assert names("app=wordpress") == ["manual-wordpress"]
    page = world.get("/api/v1/archives?limit=1").get_json()
    assert len(page["items"]) == 1 and page["next_offset"] == 1


def test_archive_info_has_the_index_entry_and_yunohosts_description(world: World) -> None:
    name = make_archive(world)
    info = world.get(f"/api/v1/archives/{name}/info").get_json()
    assert info["name"] == name and info["origin"] == "backupmanager"
    assert info["job_name"] == "nextcloud daily" and info["type"] == "ynh_app"
    assert Path(info["path"]) == world.settings.archives_dir / f"{name}.tar"
    assert "nextcloud" in info["yunohost_info"]["apps"]
    assert world.get("/api/v1/archives/nothing_20260101/info").status_code == 404
    # The web process cannot read the archives folder: the description comes from the index
    beside = world.settings.archives_dir / f"{name}.info.json"
    beside.rename(beside.with_suffix(".hidden"))
    again = world.get(f"/api/v1/archives/{name}/info").get_json()
    assert again["yunohost_info"] == info["yunohost_info"]


TRAVERSALS = [
    "..%2F..%2Fdata%2Fbackupmanager.db",
    "..%2Fdata",
    "%2E%2E",
    "..",
    ".hidden",
    "name.",
    "%2Fetc%2Fpasswd",
    "a%00b",
    "a%5Cb",
    "x" * 51,
    "..%252F..%252Fetc",
]


@pytest.mark.parametrize("name", TRAVERSALS)
def test_path_traversal_in_archive_names_is_refused(world: World, name: str) -> None:
    for method, path in (
        ("GET", f"/api/v1/archives/{name}/info"),
        ("DELETE", f"/api/v1/archives/{name}"),
        ("POST", f"/api/v1/archives/{name}/restore"),
        ("GET", f"/api/v1/archives/{name}/restore/status"),
    ):
        answer = world.call(method, path, token=world.admin)
        assert answer.status_code in (400, 404), (method, path, answer.status_code)
        assert answer.is_json and "error" in answer.get_json()
    with world.db.read() as session:
        assert session.scalar(select(func.count(Command.id))) == 0


def test_absolute_paths_and_files_beside_the_archives_are_not_archives(world: World) -> None:
    name = make_archive(world)
    (world.settings.archives_dir / "notes.txt").write_text("not an archive")
    for candidate in (f"{name}.info.json", f"{name}.tar", "notes.txt", "notes", "backupmanager.db"):
        assert world.get(f"/api/v1/archives/{candidate}/info").status_code == 404
        assert (
            world.call("DELETE", f"/api/v1/archives/{candidate}", token=world.admin).status_code
            == 404
        )
    absolute = world.get("/api/v1/archives//etc/passwd/info")
    assert absolute.status_code == 404 and absolute.is_json
    assert (world.settings.archives_dir / f"{name}.info.json").exists()


def test_deleting_an_archive_is_queued_and_done_by_the_worker(world: World) -> None:
    name = make_archive(world)
    answer = world.call("DELETE", f"/api/v1/archives/{name}", token=world.admin)
    assert answer.status_code == 202
    queued = answer.get_json()
    command_id = queued["command_id"]
    assert queued["archive_name"] == name and answer.headers["Location"] == queued["url"]
    assert (world.settings.archives_dir / f"{name}.tar").exists()  # the web process deleted nothing
    command = world.get(queued["url"]).get_json()
    assert command["kind"] == "delete_archive" and command["status"] == "queued"
    assert command["requested_by"] == "api:admin" and command["finished"] is False
    assert commands.run_inline_command(world.db, world.settings, command_id)  # the worker's part
    command = world.get(queued["url"]).get_json()
    assert (
        command["status"] == "done"
        and command["finished"]
        and command["result"] == {"deleted": name}
    )
    assert not list(world.settings.archives_dir.glob(f"{name}*"))
    assert world.get(f"/api/v1/archives/{name}/info").status_code == 404
    assert world.call("DELETE", f"/api/v1/archives/{name}", token=world.admin).status_code == 404


def test_a_yunohost_archive_is_deleted_through_yunohost(world: World, sim_root: Path) -> None:
    webadmin_backup(world, "manual-wordpress")
    answer = world.call("DELETE", "/api/v1/archives/manual-wordpress", token=world.admin)
    assert commands.run_inline_command(world.db, world.settings, answer.get_json()["command_id"])
    assert any(
        call["argv"][:3] == ["backup", "delete", "manual-wordpress"]
        for call in read_calls(sim_root)
    )
    assert world.get("/api/v1/archives").get_json()["total"] == 0


def add_restore(world: World, name: str, **values: Any) -> int:
    with world.db.write() as session:
        row = Restore(archive_name=name, created_at=system_clock(), **values)
        session.add(row)
        session.flush()
        return row.id


def test_an_archive_being_restored_cannot_be_deleted_or_restored_twice(world: World) -> None:
    name = make_archive(world)
    restore_id = add_restore(world, name, status="running")
    for method, path in (
        ("DELETE", f"/api/v1/archives/{name}"),
        ("POST", f"/api/v1/archives/{name}/restore"),
    ):
        answer = world.call(method, path, token=world.admin)
        assert answer.status_code == 409 and answer.get_json()["restore_id"] == restore_id


def test_restore_status_reports_the_newest_restore(world: World) -> None:
    name = make_archive(world)
    assert world.get(f"/api/v1/archives/{name}/restore/status").status_code == 404
    add_restore(world, name, status="error", error_message="old failure")
    newest = add_restore(
        world,
        name,
        status="running",
        phase="files",
        progress_bytes=50,
        total_bytes=200,
        steps_json=json.dumps([{"step": "restore_pre", "status": "done", "detail": ""}]),
        log_text="one\ntwo\nthree\n",
        requested_by="api:admin",
    )
    status = world.get(f"/api/v1/archives/{name}/restore/status?log_lines=2").get_json()
    assert status["id"] == newest and status["status"] == "running" and not status["finished"]
    assert status["phase"] == "files" and status["progress"]["percent"] == 25.0
    assert status["steps"] == [{"step": "restore_pre", "status": "done", "detail": ""}]
    assert status["log_tail"] == ["two", "three"] and status["error"] is None


def test_a_yunohost_app_archive_restore_is_refused_with_advice(world: World) -> None:
    name = make_archive(world)
    answer = world.call("POST", f"/api/v1/archives/{name}/restore", token=world.admin, json={})
    assert answer.status_code == 409 and "yunohost backup restore" in answer.get_json()["error"]
    bad = world.call(
        "POST",
        f"/api/v1/archives/{name}/restore",
        token=world.admin,
        json={"target": "relative/dir"},
    )
    assert bad.status_code == 400 and "target" in bad.get_json()["error"]
    typo = world.call(
        "POST", f"/api/v1/archives/{name}/restore", token=world.admin, json={"overwrite": "yes"}
    )
    assert typo.status_code == 400
    with world.db.read() as session:
        assert session.scalar(select(func.count(Restore.id))) == 0


def test_a_restore_started_through_the_api_is_followed_to_success(
    world: World, tmp_path: Path
) -> None:
    source = tmp_path / "hermes"
    (source / "conf").mkdir(parents=True)
    (source / "conf" / "app.toml").write_text("port = 8080\n")
    job_id = add_job(
        world.db,
        world.settings,
        name="hermes",
        type="custom_dir",
        config={"source_path": str(source)},
    )
    run = run_job_now(world.db, world.settings, job_id)
    assert run.status == "success", run.log_text
    target = tmp_path / "restored"
    answer = world.call(
        "POST",
        f"/api/v1/archives/{run.archive_name}/restore",
        token=world.admin,
        json={"target": str(target)},
    )
    assert answer.status_code == 202, answer.get_json()
    queued = answer.get_json()
    worker = threading.Thread(
        target=commands.run_inline_restore, args=(world.db, world.settings, queued["restore_id"])
    )
    worker.start()
    deadline, seen_phases = time.monotonic() + 60, set()
    while time.monotonic() < deadline:
        status = world.get(queued["url"]).get_json()
        seen_phases.add(status["phase"])
        if status["finished"]:
            break
        time.sleep(0.05)
    worker.join()
    assert status["id"] == queued["restore_id"] and status["status"] == "success", status
    assert status["requested_by"] == "api:admin" and status["options"]["target"] == str(target)
    assert [step["step"] for step in status["steps"]][:1] and status["log_tail"]
    restored = list(target.rglob("app.toml"))
    assert restored and restored[0].read_text() == "port = 8080\n"


def test_the_cli_deletes_through_the_same_service(
    world: World, sim_root: Path, cli_env: dict[str, str]
) -> None:
    ours = make_archive(world)
    webadmin_backup(world, "manual-wordpress")
    backupmanager = Path(sys.executable).parent / "backupmanager"
    for name in (ours, "manual-wordpress"):
        done = subprocess.run(
            [str(backupmanager), "archives", "delete", name, "--yes", "--json"],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"deleted": name}
    assert any(call["argv"][:2] == ["backup", "delete"] for call in read_calls(sim_root))
    assert not list(world.settings.archives_dir.glob("*.tar"))
    assert world.get("/api/v1/archives").get_json()["total"] == 0
