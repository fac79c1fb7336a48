"""ynh_app and ynh_system jobs end to end against the YunoHost simulator (issue 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from backupmanager import services
from backupmanager.db import Database
from backupmanager.models import Archive, Job
from backupmanager.settings import Settings
from tests.conftest import SIMULATOR
from tests.helpers import (
    add_job,
    member_bytes,
    members,
    read_calls,
    run_job_now,
    set_behaviour,
    sha256_of,
    wait_for,
)


def today(settings: Settings) -> str:
    return datetime.now(ZoneInfo(settings.timezone)).strftime("%Y%m%d")


def archive_files(settings: Settings) -> list[str]:
    return sorted(path.name for path in settings.archives_dir.iterdir())


def create_calls(sim_root: Path) -> list[dict[str, object]]:
    return [call for call in read_calls(sim_root) if call["argv"][:2] == ["backup", "create"]]


def test_ynh_app_backup_end_to_end(db: Database, settings: Settings, sim_root: Path) -> None:
    job_id = add_job(db, settings)
    run = run_job_now(db, settings, job_id)

    assert run.status == "success", run.log_text
    name = f"jerry_nextcloud_{today(settings)}"
    assert run.archive_name == name
    tar = settings.archives_dir / f"{name}.tar"
    assert archive_files(settings) == [f"{name}.info.json", f"{name}.tar"]
    # what YunoHost would need, and our own metadata
    names = members(tar)
    assert "info.json" in names and "backup.csv" in names and "backup_info.json" in names
    assert any(member.startswith("apps/nextcloud/settings/") for member in names)
    assert (
        member_bytes(tar, "info.json") == (settings.archives_dir / f"{name}.info.json").read_bytes()
    )
    info = json.loads(member_bytes(tar, "backup_info.json"))
    assert info["instance_name"] == "jerry"
    assert info["instance_url"] == "https://jerry.example.org"
    assert info["app"] == "nextcloud" and info["type"] == "ynh_app"
    assert info["yunohost_version"] == "12.1.25"
    assert info["job_name"] == "nextcloud daily"
    # the checksum recorded is the checksum of the final file
    assert run.sha256 == sha256_of(tar)
    assert run.size_bytes == tar.stat().st_size
    with db.read() as session:
        row = session.scalar(select(Archive).where(Archive.name == name))
    assert row is not None and row.sha256 == run.sha256 and row.origin == "backupmanager"
    assert row.job_id == job_id and row.kind == "ynh_app"
    # exactly the YunoHost call we expect, with no BACKUP_CORE_ONLY in its environment
    (call,) = create_calls(sim_root)
    assert call["argv"][:5] == ["backup", "create", "--name", f"bm-partial-r{run.id}", "--apps"]
    assert "--output-as" in call["argv"]
    assert call["env"]["BACKUP_CORE_ONLY"] is None
    # YunoHost itself lists and reads the renamed archive
    listed = subprocess.run(
        [str(SIMULATOR), "backup", "list", "--output-as", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert name in json.loads(listed.stdout.splitlines()[-1])["archives"]
    assert "Archive saved as" in run.log_text


def test_core_only_sets_the_environment(
    db: Database, settings: Settings, sim_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "BACKUP_CORE_ONLY", "1"
    )  # an inherited value must not leak into full backups
    full = run_job_now(db, settings, add_job(db, settings, name="full"))
    core = run_job_now(db, settings, add_job(db, settings, name="core", core_only=True))
    assert full.status == core.status == "success"
    full_call, core_call = create_calls(sim_root)
    assert full_call["env"]["BACKUP_CORE_ONLY"] is None
    assert core_call["env"]["BACKUP_CORE_ONLY"] == "1"
    assert "BACKUP_CORE_ONLY=1" in core.log_text
    assert core.size_bytes is not None and full.size_bytes is not None
    assert core.size_bytes < full.size_bytes  # the big data folder was skipped


def test_ynh_system_backup(db: Database, settings: Settings, sim_root: Path) -> None:
    all_parts = run_job_now(
        db, settings, add_job(db, settings, name="system", type="ynh_system", config={})
    )
    some = run_job_now(
        db,
        settings,
        add_job(
            db,
            settings,
            name="conf",
            type="ynh_system",
            config={"parts": ["conf_ynh_settings", "conf_ldap"]},
        ),
    )
    assert all_parts.status == some.status == "success"
    assert all_parts.archive_name == f"jerry_system_{today(settings)}"
    assert some.archive_name is not None and some.archive_name.startswith(
        f"jerry_system_{today(settings)}-"
    )
    first, second = create_calls(sim_root)
    assert first["argv"][4:6] == ["--system", "--output-as"]  # no part named: every part
    assert second["argv"][4:7] == ["--system", "conf_ldap", "conf_ynh_settings"]
    tar = settings.archives_dir / f"{some.archive_name}.tar"
    assert any(member.startswith("hooks/restore/") for member in members(tar))


def test_partial_failure_is_a_failed_run(db: Database, settings: Settings, sim_root: Path) -> None:
    set_behaviour(sim_root, results={"data_mail": "Error"})
    run = run_job_now(
        db, settings, add_job(db, settings, name="system", type="ynh_system", config={})
    )
    assert run.status == "error"
    assert run.error_message is not None and "system part data_mail: Error" in run.error_message
    assert archive_files(settings) == []  # the incomplete archive was not kept under any name
    with db.read() as session:
        job = session.scalar(select(Job))
    assert job is not None and job.last_error == run.error_message


def test_yunohost_error_is_explained(db: Database, settings: Settings, sim_root: Path) -> None:
    set_behaviour(sim_root, fail={"backup create": "[Errno 28] No space left on device"})
    run = run_job_now(db, settings, add_job(db, settings))
    assert run.status == "error"
    assert run.error_message is not None
    assert "No space left on device" in run.error_message
    assert "The disk is full" in run.error_message


@contextmanager
def another_backup_holding_the_lock(
    settings: Settings, sim_root: Path, *, seconds: float
) -> Iterator[None]:
    """A webadmin backup that holds YunoHost's lock for a while (every call is slowed down)."""
    set_behaviour(sim_root, delay_seconds=seconds)
    other = subprocess.Popen(
        [str(SIMULATOR), "backup", "create", "--name", "webadmin-backup", "--apps", "wordpress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: (settings.archives_dir / "webadmin-backup.tar").exists(),
            what="the other backup to start",
        )
        yield
    finally:
        other.wait(timeout=60)


def test_wait_for_yunohost_lock_shows_in_log(
    db: Database, settings: Settings, sim_root: Path
) -> None:
    job_id = add_job(db, settings)
    with another_backup_holding_the_lock(settings, sim_root, seconds=3):
        run = run_job_now(db, settings, job_id)
    assert run.status == "success", run.log_text
    assert "Another YunoHost command is running" in run.log_text


def test_lock_timeout_is_a_clear_failure(db: Database, settings: Settings, sim_root: Path) -> None:
    short = settings.model_copy(update={"yunohost_lock_timeout_seconds": 1})
    job_id = add_job(db, settings)
    with another_backup_holding_the_lock(settings, sim_root, seconds=4):
        run = run_job_now(db, short, job_id)
    assert run.status == "error"
    assert run.error_message is not None
    assert "stayed busy with another operation" in run.error_message


def test_two_runs_the_same_day(db: Database, settings: Settings) -> None:
    job_id = add_job(db, settings)
    first = run_job_now(db, settings, job_id)
    second = run_job_now(db, settings, job_id)
    assert first.status == second.status == "success"
    assert first.archive_name == f"jerry_nextcloud_{today(settings)}"
    assert second.archive_name is not None and second.archive_name.startswith(
        f"{first.archive_name}-"
    )
    assert sorted([second.archive_name, first.archive_name]) == [
        first.archive_name,
        second.archive_name,
    ]
    assert (settings.archives_dir / f"{first.archive_name}.tar").exists()
    assert (settings.archives_dir / f"{second.archive_name}.tar").exists()


def test_name_that_would_exceed_50_characters(
    db: Database, settings: Settings, sim_root: Path
) -> None:
    long_app = "a-long-application-name-for-a-long-instance"
    sim_root.mkdir(parents=True, exist_ok=True)
    (sim_root / "apps.json").write_text(
        json.dumps(
            [
                {
                    "id": long_app,
                    "name": "Long",
                    "description": "",
                    "version": "1.0~ynh1",
                    "supports_backup_restore": True,
                    "core_size": 1024,
                    "data_size": 1024,
                }
            ]
        )
    )
    long_settings = settings.model_copy(
        update={"instance_name": "the-association-main-server-2026"}
    )
    job_id = add_job(db, long_settings, config={"app_id": long_app})
    runs = [run_job_now(db, long_settings, job_id) for _ in range(3)]
    assert all(run.status == "success" for run in runs), runs[-1].log_text
    for run in runs:
        assert run.archive_name is not None and len(run.archive_name) <= 50
        assert (settings.archives_dir / f"{run.archive_name}.tar").exists()
    assert len({run.archive_name for run in runs}) == 3


def test_unknown_app_and_bad_input_are_refused(db: Database, settings: Settings) -> None:
    with pytest.raises(services.InputError, match="not an installed app"):
        add_job(db, settings, config={"app_id": "ghost"})
    with pytest.raises(services.InputError, match="no backup/restore scripts"):
        add_job(db, settings, config={"app_id": "my_webapp"})
    with pytest.raises(services.InputError, match="needs 5"):
        add_job(db, settings, cron="0 3 * *")
    with pytest.raises(services.InputError, match="unknown system part"):
        add_job(db, settings, type="ynh_system", config={"parts": ["conf_nope"]})
    with pytest.raises(services.InputError, match="unknown job type"):
        add_job(db, settings, type="borg")
    with pytest.raises(services.InputError, match="name"):
        add_job(db, settings, name="bad:name")
    with db.read() as session:
        assert session.scalar(select(Job)) is None  # nothing was created


def test_retention_keeps_foreign_archives(db: Database, settings: Settings, sim_root: Path) -> None:
    for name, app in (("manual-webadmin", "wordpress"), ("nextcloud-pre-upgrade1", "nextcloud")):
        subprocess.run(
            [
                str(SIMULATOR),
                "backup",
                "create",
                "--name",
                name,
                "--apps",
                app,
                "--output-as",
                "json",
            ],
            check=True,
            capture_output=True,
        )
    job_id = add_job(db, settings, retention="count:2")
    runs = [run_job_now(db, settings, job_id) for _ in range(3)]
    assert [run.status for run in runs] == ["success"] * 3
    remaining = archive_files(settings)
    assert f"{runs[0].archive_name}.tar" not in remaining  # the oldest of ours went
    assert f"{runs[1].archive_name}.tar" in remaining and f"{runs[2].archive_name}.tar" in remaining
    assert "manual-webadmin.tar" in remaining and "nextcloud-pre-upgrade1.tar" in remaining
    assert f"Retention: deleted {runs[0].archive_name}" in runs[2].log_text
    with db.read() as session:
        origins = dict(session.execute(select(Archive.name, Archive.origin)).all())
    assert origins["manual-webadmin"] == "yunohost"
    assert origins["nextcloud-pre-upgrade1"] == "yunohost-pre-upgrade"


def test_no_retention_after_a_failed_run(db: Database, settings: Settings, sim_root: Path) -> None:
    job_id = add_job(db, settings, retention="count:1")
    good = run_job_now(db, settings, job_id)
    set_behaviour(sim_root, results={"nextcloud": "Error"})
    bad = run_job_now(db, settings, job_id)
    assert good.status == "success" and bad.status == "error"
    assert f"{good.archive_name}.tar" in archive_files(settings)


def test_dangling_run_of_a_dead_process_is_marked_interrupted(
    db: Database, settings: Settings
) -> None:
    from backupmanager.clock import system_clock
    from backupmanager.models import Run
    from backupmanager.worker import recover_dead_runs

    job_id = add_job(db, settings)
    queued = services.queue_run(
        db, job_id, trigger="manual", requested_by="test", now=system_clock()
    )
    partial = settings.archives_dir / f"bm-partial-r{queued.run_id}.tar"
    partial.write_bytes(b"half an archive")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    with db.write() as session:
        run = session.get(Run, queued.run_id)
        assert run is not None
        run.status, run.pid = "running", int(dead.stdout)
    assert recover_dead_runs(db, settings, system_clock()) == [queued.run_id]
    with db.read() as session:
        run = session.get(Run, queued.run_id)
        assert run is not None and run.status == "interrupted"
    assert not partial.exists()
